-- grain: one row per row of `parts` and placement of the tabulation (pipeline/tabulation.py)
-- it counts in, its codes (region_code, industry_code, size_class) replaced by their ancestors
-- at the placement's levels, its other columns as they are. A table macro: contributions.sql
-- places each enterprise, cells.sql the sums of the parts that count in the same cells.
-- input: region_ancestors / industry_ancestors / size_ancestors (code, level, ancestor),
-- placements (region_level, industry_level, size_level)
create or replace macro placed(parts) as table
select
    region.ancestor as region_code,
    industry.ancestor as industry_code,
    size.ancestor as size_class,
    part.* exclude (region_code, industry_code, size_class)
from query_table(parts) as part
cross join placements
join region_ancestors as region
    on region.code = part.region_code and region.level = placements.region_level
join industry_ancestors as industry
    on industry.code = part.industry_code and industry.level = placements.industry_level
join size_ancestors as size
    on size.code = part.size_class and size.level = placements.size_level
