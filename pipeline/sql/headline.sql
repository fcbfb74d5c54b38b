-- grain: one row per indicator for the province (public `headline`), with last year's
-- published value and the change on it: by_region's rows of the cells headline shows, which
-- are the same cells, so year on year is worked out in one place
-- input: by_region (this year's, as built by by_region.sql), table_cells, indicators;
-- parameter: table_name
select
    by_region.indicator,
    by_region.value,
    by_region.contributors,
    by_region.enterprises,
    by_region.imputed,
    by_region.imputed_share,
    by_region.conf_status,
    by_region.prev_value,
    by_region.yoy_pct
from by_region
join table_cells on table_cells.region_code = by_region.region_code
join indicators on indicators.indicator = by_region.indicator
where table_cells.table_name = $table_name
order by indicators.position
