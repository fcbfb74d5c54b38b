-- grain: one row per data row of every read file of the survey year (source_file, source_row),
-- typed, with its findings and its outcome: the valid layer.
-- input: valid_checked (the year's checked batches), valid_outcomes (outcomes.sql's result)
select
    valid_checked.* exclude (unread_text),
    valid_outcomes.outcome,
    valid_outcomes.outcome_rule
from valid_checked
inner join valid_outcomes using (source_file, source_row)
