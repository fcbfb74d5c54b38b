-- grain: one row per enterprise of the population, cell it counts in and indicator: what the
-- enterprise adds to that cell (monitoring-tables.md §1), and whether it is imputed (§6). An
-- enterprise counts in one cell per placement of the tabulation (pipeline/tabulation.py): the
-- province, its city and county, its section and division, its size class, its city × section.
-- input: enterprises (statistical layer), region_ancestors / industry_ancestors /
-- size_ancestors (code, level, ancestor), placements (region_level, industry_level, size_level)
with reported as (
    unpivot (
        select
            credit_code,
            region_code,
            industry_code,
            size_class,
            imputation is not null as imputed,
            intl_led::double as intl_led,
            intl_involved::double as intl_involved,
            national_led::double as national_led,
            national_involved::double as national_involved,
            industry_led::double as industry_led,
            industry_involved::double as industry_involved,
            local_led::double as local_led,
            local_involved::double as local_involved,
            group_led::double as group_led,
            group_involved::double as group_involved,
            enterprise_declared::double as enterprise_declared,
            zhejiang_made::double as zhejiang_made,
            leader_standards::double as leader_standards,
            patents_in_standards::double as patents_in_standards,
            intl_tc_posts::double as intl_tc_posts,
            national_tc_members::double as national_tc_members,
            intl_registered_experts::double as intl_registered_experts,
            std_staff::double as std_staff,
            std_spending::double as std_spending,
            financing_amount::double as financing_amount,
            -- accepted returns only; every other indicator covers the population
            (imputation is null)::double as enterprises_reporting,
            (greatest(intl_led, national_led, industry_led, local_led, group_led) > 0)::double
                as enterprises_leading,
            (innovation_award <> 'none')::double as enterprises_awarded
        from enterprises
    )
    on columns(* exclude (credit_code, region_code, industry_code, size_class, imputed))
    into name indicator value value
)

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
