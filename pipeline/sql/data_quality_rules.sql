-- grain: one row per region (every level, and 000000 unknown) and rule with at least one row
-- (public `data_quality_rules`): rows with an E or W finding, or decided by a D rule
-- input: returns (the valid layer), regions, region_rollup (a county, or 000000, to every
-- region its rows count in: pipeline/tabulation.py)
with row_rules as (
    select distinct source_file, source_row, region_code, f.rule_id, f.severity
    from returns, unnest(returns.findings) as t(f)
    union
    select source_file, source_row, region_code, outcome_rule, 'D'
    from returns
    where outcome_rule is not null
),

located as (
    select row_rules.*, coalesce(counties.code, '000000') as county_code
    from row_rules
    left join regions as counties
        on counties.code = row_rules.region_code and counties.level = 'county'
),

placed as (
    select region_rollup.ancestor as area, located.rule_id, located.severity
    from located
    join region_rollup on region_rollup.code = located.county_code
)

select area as region_code, rule_id, severity, count(*) as rows
from placed
group by area, rule_id, severity
order by area = '000000', area, rule_id
