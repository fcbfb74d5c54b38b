-- grain: one row per data row of every read file of the survey year (source_file, source_row),
-- with its outcome (accepted / rejected / superseded / duplicate) and the D rule that decided it.
-- input: checked (the validated rows of every read file); only keys and form columns are read
with keyed as (
    select source_file, source_row, credit_code, submitted_at, rejected
    from checked
),

candidates as (
    -- rows equal in every form column share these two: only rows that share them with
    -- another are compared whole (null is a value here, as in the comparison below)
    select credit_code, submitted_at
    from keyed
    group by all
    having count(*) > 1
),

copies as (
    -- D202: rows equal in every form column after normalisation; the first copy stands.
    select
        source_file,
        source_row,
        row_number() over (
            partition by
                survey_year, credit_code, enterprise_name, region_code, industry_code,
                size_class, employees, revenue,
                intl_led, intl_involved, national_led, national_involved,
                industry_led, industry_involved, local_led, local_involved,
                group_led, group_involved, enterprise_declared, zhejiang_made,
                leader_standards, patents_in_standards,
                intl_tc_posts, national_tc_members, intl_registered_experts, std_staff,
                std_spending, innovation_award, financing_amount, rd_expenditure,
                contact_name, contact_phone, submitted_at, unread_text
            order by source_file, source_row
        ) as copy_number
    from checked
    semi join candidates
        on checked.credit_code is not distinct from candidates.credit_code
        and checked.submitted_at is not distinct from candidates.submitted_at
),

numbered as not materialized (
    -- read three times (contested, ranked, the outcomes), joined again each time: materialised,
    -- it held a row a data row in DuckDB's memory (0.35 GB at 5M returns)
    select
        keyed.*,
        coalesce(copies.copy_number, 1) as copy_number
    from keyed
    left join copies using (source_file, source_row)
),

contested as (
    -- the credit codes with more than one valid first copy: only their rows are ranked (a
    -- window over every row sorted a million of them to rank 45,000, 0.5 s of the query's 0.8)
    select credit_code
    from numbered
    where copy_number = 1 and not rejected
    group by credit_code
    having count(*) > 1
),

ranked as (
    -- D201: among valid first copies, the latest submitted_at wins; ties go to the file
    -- whose name sorts later, then the later row
    select
        source_file,
        source_row,
        row_number() over (
            partition by credit_code
            order by submitted_at desc, source_file desc, source_row desc
        ) as recency
    from numbered
    semi join contested using (credit_code)
    where copy_number = 1 and not rejected
)

select
    source_file,
    source_row,
    case
        when copy_number > 1 then 'duplicate'
        when rejected then 'rejected'
        when coalesce(recency, 1) = 1 then 'accepted'  -- null: the code's only valid first copy
        else 'superseded'
    end as outcome,
    case
        when copy_number > 1 then 'D202'
        when not rejected and recency > 1 then 'D201'
    end as outcome_rule
from numbered
left join ranked using (source_file, source_row)
