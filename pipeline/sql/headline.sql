-- grain: one row per indicator for the province (public `headline`), with last year's
-- published value and the change on it: the province's rows of by_region, which hold the same
-- cells, so year on year is worked out in one place
-- input: by_region (this year's, as built by by_region.sql), indicators
select
    by_region.indicator,
    by_region.value,
    by_region.contributors,
    by_region.enterprises,
    by_region.conf_status,
    by_region.prev_value,
    by_region.yoy_pct
from by_region
join indicators using (indicator)
where by_region.region_code = '330000'
order by indicators.position
