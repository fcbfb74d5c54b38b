-- grain: one row per read file of the survey year: its rows by outcome
-- input: returns (the valid layer)
select
    source_file,
    count(*) as rows_read,
    count(*) filter (where outcome = 'accepted') as accepted,
    count(*) filter (where outcome = 'rejected') as rejected,
    count(*) filter (where outcome = 'superseded') as superseded,
    count(*) filter (where outcome = 'duplicate') as duplicate,
    count(*) filter (where outcome = 'accepted' and len(warnings) > 0) as accepted_with_warnings
from returns
group by source_file
order by source_file
