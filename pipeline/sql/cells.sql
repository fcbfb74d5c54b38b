-- grain: one row per cell (region_code, industry_code, size_class; '_T' = all) and indicator of
-- the linked public tables, with what disclosure control needs: value, contributors,
-- enterprises and the two largest single contributions (top1, top2)
-- input: enterprises (statistical layer), regions (reference), indicators (§1)
with contributions as (
    unpivot (
        select
            region_code as county_code,
            city_code,
            section_code,
            division_code,
            size_class,
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
            1.0::double as enterprises_reporting,
            (greatest(intl_led, national_led, industry_led, local_led, group_led) > 0)::double
                as enterprises_leading,
            (innovation_award <> 'none')::double as enterprises_awarded
        from enterprises
    )
    on columns(* exclude (county_code, city_code, section_code, division_code, size_class))
    into name indicator value value
),

placed as (
    -- every cell an enterprise counts in: the province, its city and its county; its section
    -- and division; its size class; its city × section
    select '330000' as region_code, '_T' as industry_code, '_T' as size_class, indicator, value
    from contributions
    union all
    select city_code, '_T', '_T', indicator, value from contributions
    union all
    select county_code, '_T', '_T', indicator, value from contributions
    union all
    select '330000', section_code, '_T', indicator, value from contributions
    union all
    select '330000', division_code, '_T', indicator, value from contributions
    union all
    select '330000', '_T', size_class, indicator, value from contributions
    union all
    select city_code, section_code, '_T', indicator, value from contributions
),

sums as (
    select
        region_code,
        industry_code,
        size_class,
        indicator,
        sum(value) as value,
        count(*) filter (where value > 0) as contributors,
        count(*) as enterprises,
        max(value, 2) as largest
    from placed
    group by region_code, industry_code, size_class, indicator
),

cell_keys as (
    -- cells with enterprises, and the cells published even without any: every region, every
    -- size class
    select distinct region_code, industry_code, size_class from sums
    union
    select code, '_T', '_T' from regions
    union
    select '330000', '_T', size_class
    from (values ('large'), ('medium'), ('small'), ('micro')) as sizes (size_class)
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
    coalesce(sums.largest[2], 0) as top2
from cell_keys
cross join indicators
left join sums using (region_code, industry_code, size_class, indicator)
order by cell_keys.region_code, cell_keys.industry_code, cell_keys.size_class, indicators.position
