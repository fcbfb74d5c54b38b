-- grain: one row per city (or the province, 330000) × section (or '_T' for all) with
-- enterprises, and indicator (public `by_region_industry`)
-- input: shown (shown.sql: the cells each public table shows, hidden values null),
-- indicators; parameter: table_name
select
    cells.region_code as city_code,
    cells.industry_code as section_code,
    cells.indicator,
    cells.value,
    cells.contributors,
    cells.enterprises,
    cells.imputed,
    cells.imputed_share,
    cells.conf_status
from shown as cells
join indicators on indicators.indicator = cells.indicator
where cells.table_name = $table_name
order by cells.region_code, cells.industry_code, indicators.position
