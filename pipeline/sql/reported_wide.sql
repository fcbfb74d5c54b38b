-- grain: one row per enterprise of the population: what it reports (or is imputed) for each
-- indicator, a column each, and whether it is imputed (monitoring-tables.md §6); reported.sql
-- has a row per indicator, cells.sql sums these columns before it unpivots them
-- input: enterprises (statistical layer)
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
