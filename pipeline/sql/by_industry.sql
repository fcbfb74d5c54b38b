-- grain: one row per industry (the total, GB/T 4754 sections and divisions with enterprises)
-- and indicator, for the province (public `by_industry`)
-- input: shown (shown.sql: the cells each public table shows, hidden values null),
-- industries, indicators; parameter: table_name
with levels as (
    select '_T' as industry_code, '合计' as industry_name, 'total' as industry_level,
        null::varchar as parent_code
    union all
    select code, name, level, coalesce(nullif(parent_code, ''), '_T')
    from industries
    where level in ('section', 'division')
)

select
    levels.industry_code,
    levels.industry_name,
    levels.industry_level,
    levels.parent_code,
    cells.indicator,
    cells.value,
    cells.contributors,
    cells.enterprises,
    cells.imputed,
    cells.imputed_share,
    cells.conf_status
from shown as cells
join levels on levels.industry_code = cells.industry_code
join indicators on indicators.indicator = cells.indicator
where cells.table_name = $table_name
order by
    case levels.industry_level when 'total' then 0 when 'section' then 1 else 2 end,
    levels.industry_code,
    indicators.position
