-- grain: one row per enterprise of the year's population (monitoring-tables.md §6): every
-- accepted return, and every frame enterprise without one, imputed (the restricted
-- `enterprises` table, §4)
-- input: accepted (accepted.sql), imputed (pipeline/population.py: imputation, donor_credit_code)
with population as (
    select * from accepted
    union all by name
    select * from imputed
)

select
    -- cell_status as one-byte letters (aggregate.connect), not 33 strings, through the sort
    population.* exclude (imputation, donor_credit_code, source_file, source_row)
        replace (population.cell_status::cell_statuses as cell_status),
    population.imputation,
    population.donor_credit_code,
    population.source_file,
    population.source_row
from population
order by population.credit_code
