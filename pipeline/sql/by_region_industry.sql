-- grain: one row per city (or the province, 330000) × section (or '_T' for all) with
-- enterprises, and indicator (public `by_region_industry`)
-- input: cells (protected), regions, indicators
select
    cells.region_code as city_code,
    cells.industry_code as section_code,
    cells.indicator,
    cells.value,
    cells.contributors,
    cells.enterprises,
    cells.conf_status
from cells
join regions on regions.code = cells.region_code and regions.level in ('province', 'city')
join indicators using (indicator)
where cells.size_class = '_T' and (cells.industry_code = '_T' or length(cells.industry_code) = 1)
order by cells.region_code, cells.industry_code, indicators.position
