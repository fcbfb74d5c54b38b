-- grain: one row per cell of a survey frame row left out of the population (rule N402,
-- monitoring-tables.md §6): a credit code failing E004/E005 after normalisation, or a region,
-- industry or size class that is not a valid code
-- input: frame_rejected (pipeline/population.py: source_file, source_row, credit_code,
-- enterprise_name, region_code, column_name, value_received), rules
select
    frame_rejected.region_code,
    frame_rejected.credit_code,
    frame_rejected.enterprise_name,
    'N402' as rule_id,
    rules.severity,
    frame_rejected.column_name,
    frame_rejected.value_received,
    rules.message_zh,
    rules.message_en,
    frame_rejected.source_file,
    frame_rejected.source_row::bigint as source_row,
    null::varchar as contact_name,
    null::varchar as contact_phone
from frame_rejected
join rules on rules.rule_id = 'N402'
order by frame_rejected.source_row, frame_rejected.column_name
