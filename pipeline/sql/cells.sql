-- grain: one row per cell (region_code, industry_code, size_class; '_T' = all) and indicator of
-- the linked public tables, with what disclosure control needs: value, contributors (imputed
-- enterprises included), enterprises (accepted returns), imputed (enterprises imputed, §6) and the
-- part of the value they make, and the two largest single contributions (top1, top2)
-- input: contributions (contributions.sql), tabulated (cells shown even without enterprises),
-- indicators; parameter: has_frame (without a survey frame nothing is imputed: imputed is null)
with sums as (
    select
        region_code,
        industry_code,
        size_class,
        indicator,
        sum(value) as value,
        count(*) filter (where value > 0) as contributors,
        count(*) filter (where not imputed) as enterprises,
        count(*) filter (where imputed) as imputed,
        coalesce(sum(value) filter (where imputed), 0) as imputed_value,
        max(value, 2) as largest
    from contributions
    group by region_code, industry_code, size_class, indicator
),

cell_keys as (
    select distinct region_code, industry_code, size_class from sums
    union
    select region_code, industry_code, size_class from tabulated
)

select
    cell_keys.region_code,
    cell_keys.industry_code,
    cell_keys.size_class,
    indicators.indicator,
    coalesce(sums.value, 0) as value,
    coalesce(sums.contributors, 0) as contributors,
    coalesce(sums.enterprises, 0) as enterprises,
    coalesce(sums.largest[1], 0) as top1,
    coalesce(sums.largest[2], 0) as top2,
    case when $has_frame then coalesce(sums.imputed, 0) end as imputed,
    case when $has_frame then coalesce(sums.imputed_value, 0) end as imputed_value
from cell_keys
cross join indicators
left join sums using (region_code, industry_code, size_class, indicator)
order by cell_keys.region_code, cell_keys.industry_code, cell_keys.size_class, indicators.position
