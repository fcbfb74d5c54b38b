-- grain: one row per finding to chase in the survey year: every finding of a rejected row,
-- every warning of an accepted row, the D rule of a superseded or duplicate row, and every
-- quarantined file (F rule). Frame enterprises without a return (N401) come from no_return.sql.
-- input: returns (the valid layer), quarantined (file, rule, reason), rules
with unnested as (
    -- the findings of the rows that have some to chase, one row each (unnest in the select
    -- list: as a lateral join, DuckDB would number and regroup every row of the year)
    select
        region_code, credit_code, enterprise_name, outcome,
        unnest(findings) as f,
        source_file, source_row, contact_name, contact_phone
    from returns
    where outcome = 'rejected' or (outcome = 'accepted' and len(warnings) > 0)
),

row_findings as (
    select
        region_code, credit_code, enterprise_name,
        f.rule_id, f.column_name, f.value_received,
        source_file, source_row, contact_name, contact_phone
    from unnested
    where outcome = 'rejected' or f.severity = 'W'
),

outcome_findings as (
    select
        region_code, credit_code, enterprise_name,
        outcome_rule as rule_id, null as column_name, null as value_received,
        source_file, source_row, contact_name, contact_phone
    from returns
    where outcome_rule is not null
),

file_findings as (
    select
        null as region_code, null as credit_code, null as enterprise_name,
        rule as rule_id, null as column_name, reason as value_received,
        source_file, null as source_row, null as contact_name, null as contact_phone
    from quarantined
),

findings as (
    select * from row_findings
    union all by name
    select * from outcome_findings
    union all by name
    select * from file_findings
)

select
    findings.region_code,
    findings.credit_code,
    findings.enterprise_name,
    findings.rule_id,
    rules.severity,
    findings.column_name,
    findings.value_received::varchar as value_received,
    rules.message_zh,
    rules.message_en,
    findings.source_file,
    findings.source_row::bigint as source_row,
    findings.contact_name,
    findings.contact_phone
from findings
join rules using (rule_id)
order by findings.source_file, findings.source_row nulls first, findings.rule_id,
    findings.column_name
