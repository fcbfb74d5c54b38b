-- grain: one row per cell (region_code, industry_code, size_class; '_T' = all) and indicator of
-- the linked public tables, with what disclosure control needs: value, contributors (imputed
-- enterprises included), enterprises (accepted returns), imputed (enterprises imputed, §6) and the
-- part of the value they make, and the two largest single contributions (top1, top2)
-- input: reported_wide (reported_wide.sql), part_sums (part_sums.sql), region_parts /
-- industry_parts / size_parts (code, part), placed (placed.sql), tabulated (cells shown even
-- without enterprises), indicators;
-- parameter: has_frame (without a survey frame nothing is imputed: imputed is null)
with parts as (
    -- the enterprises summed first by the cells they all count in (the parts of each
    -- dimension's codes: the counties of a city are apart, the classes of a division are
    -- one), each part with a code of its own to be placed by: a cell's sums and counts add its
    -- parts' up, and its two largest contributions are among its parts' two largest. Tens of
    -- thousands of parts to place rather than an enterprise each. Every indicator at once, a
    -- struct each (part_sums.sql), before they are unpivoted: at 5M returns, 4.5M rows to group
    -- rather than 104M
    select
        any_value(reported_wide.region_code) as region_code,
        any_value(reported_wide.industry_code) as industry_code,
        any_value(reported_wide.size_class) as size_class,
        part_sums(
            columns(reported_wide.* exclude (
                credit_code, region_code, industry_code, size_class, imputed)),
            reported_wide.imputed
        ) as "\0"
    from reported_wide
    join region_parts on region_parts.code = reported_wide.region_code
    join industry_parts on industry_parts.code = reported_wide.industry_code
    join size_parts on size_parts.code = reported_wide.size_class
    group by region_parts.part, industry_parts.part, size_parts.part
),

finest as (
    -- a row per part and indicator with any enterprise in its counts
    select region_code, industry_code, size_class, indicator, part.*
    from (
        unpivot parts
        on columns(* exclude (region_code, industry_code, size_class))
        into name indicator value part
    )
    where part.enterprises + part.imputed > 0
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
    coalesce(sums.value, 0)::double as value,
    coalesce(sums.contributors, 0) as contributors,
    coalesce(sums.enterprises, 0) as enterprises,
    coalesce(sums.top1, 0) as top1,
    coalesce(sums.top2, 0) as top2,
    case when $has_frame then coalesce(sums.imputed, 0) end as imputed,
    case when $has_frame then coalesce(sums.imputed_value, 0)::double end as imputed_value
from cell_keys
cross join indicators
left join sums using (region_code, industry_code, size_class, indicator)
order by cell_keys.region_code, cell_keys.industry_code, cell_keys.size_class, indicators.position
