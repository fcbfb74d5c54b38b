-- grain: one row per cell (region_code, industry_code, size_class; '_T' = all) and indicator of
-- the linked public tables, with what disclosure control needs: value, contributors (imputed
-- enterprises included), enterprises (accepted returns), imputed (enterprises imputed, §6) and the
-- part of the value they make, and the two largest single contributions (top1, top2)
-- input: reported (reported.sql), region_parts / industry_parts / size_parts (code, part),
-- placed (placed.sql), tabulated (cells shown even without enterprises), indicators;
-- parameter: has_frame (without a survey frame nothing is imputed: imputed is null)
with finest as (
    -- the enterprises summed first by the cells they all count in (the parts of each
    -- dimension's codes: the counties of a city are apart, the classes of a division are
    -- one), each part with a code of its own to be placed by: a cell's sums and counts add its
    -- parts' up, and its two largest contributions are among its parts' two largest. Tens of
    -- thousands of parts to place rather than an enterprise each.
    select
        any_value(reported.region_code) as region_code,
        any_value(reported.industry_code) as industry_code,
        any_value(reported.size_class) as size_class,
        reported.indicator,
        sum(reported.value) as value,
        count(*) filter (where reported.value > 0) as contributors,
        count(*) filter (where not reported.imputed) as enterprises,
        count(*) filter (where reported.imputed) as imputed,
        coalesce(sum(reported.value) filter (where reported.imputed), 0) as imputed_value,
        max(reported.value, 2) as largest
    from reported
    join region_parts on region_parts.code = reported.region_code
    join industry_parts on industry_parts.code = reported.industry_code
    join size_parts on size_parts.code = reported.size_class
    group by region_parts.part, industry_parts.part, size_parts.part, reported.indicator
),

sums as (
    select
        region_code,
        industry_code,
        size_class,
        indicator,
        sum(value) as value,
        -- counts stay bigint (a sum of bigints is a hugeint in DuckDB)
        sum(contributors)::bigint as contributors,
        sum(enterprises)::bigint as enterprises,
        sum(imputed)::bigint as imputed,
        sum(imputed_value) as imputed_value,
        max(largest[1]) as top1,
        -- the second largest is a part's second, or the largest of another part
        greatest(max(largest[1], 2)[2], arg_max(largest[2], largest[1])) as top2
    from placed(finest)
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
    coalesce(sums.top1, 0) as top1,
    coalesce(sums.top2, 0) as top2,
    case when $has_frame then coalesce(sums.imputed, 0) end as imputed,
    case when $has_frame then coalesce(sums.imputed_value, 0) end as imputed_value
from cell_keys
cross join indicators
left join sums using (region_code, industry_code, size_class, indicator)
order by cell_keys.region_code, cell_keys.industry_code, cell_keys.size_class, indicators.position
