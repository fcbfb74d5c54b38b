-- grain: one row per region (every level, and 000000 unknown) and rule with at least one row
-- (public `data_quality_rules`): rows with an E or W finding, or decided by a D rule
-- input: returns (the valid layer), regions
with row_rules as (
    select distinct source_file, source_row, region_code, f.rule_id, f.severity
    from returns, unnest(returns.findings) as t(f)
    union
    select source_file, source_row, region_code, outcome_rule, 'D'
    from returns
    where outcome_rule is not null
),

located as (
    select row_rules.*, counties.code as county_code, counties.parent_code as city_code
    from row_rules
    left join regions as counties
        on counties.code = row_rules.region_code and counties.level = 'county'
),

placed as (
    select county_code as area, rule_id, severity from located where county_code is not null
    union all
    select city_code, rule_id, severity from located where county_code is not null
    union all
    select '330000', rule_id, severity from located
    union all
    select '000000', rule_id, severity from located where county_code is null
)

select area as region_code, rule_id, severity, count(*) as rows
from placed
group by area, rule_id, severity
order by area = '000000', area, rule_id
