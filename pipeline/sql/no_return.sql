-- grain: one row per frame enterprise of the survey year with no accepted return (rule N401),
-- with the contact details of its latest return of any outcome, where it filed one
-- input: frame (the survey frame's enterprises, codes normalised: pipeline/population.py),
-- returns (the valid layer), rules
with accepted as (
    select distinct credit_code from returns where outcome = 'accepted'
),

latest_contact as (
    select credit_code, contact_name, contact_phone, source_file, source_row
    from returns
    where credit_code is not null
    qualify row_number() over (
        partition by credit_code order by submitted_at desc nulls last, source_file desc,
        source_row desc
    ) = 1
)

select
    frame.region_code,
    frame.credit_code,
    frame.enterprise_name,
    'N401' as rule_id,
    rules.severity,
    null::varchar as column_name,
    null::varchar as value_received,
    rules.message_zh,
    rules.message_en,
    latest_contact.source_file,
    latest_contact.source_row::bigint as source_row,
    latest_contact.contact_name,
    latest_contact.contact_phone
from frame
join rules on rules.rule_id = 'N401'
left join accepted using (credit_code)
left join latest_contact using (credit_code)
where accepted.credit_code is null
order by frame.region_code, frame.credit_code
