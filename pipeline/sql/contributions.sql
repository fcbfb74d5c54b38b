-- grain: one row per enterprise of the population, cell it counts in and indicator: what the
-- enterprise adds to that cell (monitoring-tables.md §1), and whether it is imputed (§6). An
-- enterprise counts in one cell per placement of the tabulation (pipeline/tabulation.py): the
-- province, its city and county, its section and division, its size class, its city × section.
-- input: reported (reported.sql), region_ancestors / industry_ancestors /
-- size_ancestors (code, level, ancestor), placements (region_level, industry_level, size_level)
select
    reported.credit_code,
    region.ancestor as region_code,
    industry.ancestor as industry_code,
    size.ancestor as size_class,
    reported.indicator,
    reported.value,
    reported.imputed
from reported
cross join placements
join region_ancestors as region
    on region.code = reported.region_code and region.level = placements.region_level
join industry_ancestors as industry
    on industry.code = reported.industry_code and industry.level = placements.industry_level
join size_ancestors as size
    on size.code = reported.size_class and size.level = placements.size_level
