-- grain: one row per city (or the province, 330000) × section (or '_T' for all) with
-- enterprises, and indicator (public `by_region_industry`)
-- input: cells (protected, hidden values null), table_cells, indicators; parameter: table_name
select
    cells.region_code as city_code,
    cells.industry_code as section_code,
    cells.indicator,
    cells.value,
    cells.contributors,
    cells.enterprises,
    cells.conf_status
from cells
join table_cells
    on table_cells.region_code = cells.region_code
    and table_cells.industry_code = cells.industry_code
    and table_cells.size_class = cells.size_class
join indicators on indicators.indicator = cells.indicator
where table_cells.table_name = $table_name
order by cells.region_code, cells.industry_code, indicators.position
