-- grain: one row per enterprise of the population, cell it counts in and indicator: what the
-- enterprise adds to that cell (monitoring-tables.md §1), and whether it is imputed (§6). An
-- enterprise counts in one cell per placement of the tabulation (pipeline/tabulation.py): the
-- province, its city and county, its section and division, its size class, its city × section.
-- input: reported (reported.sql), placed (placed.sql)
select
    credit_code,
    region_code,
    industry_code,
    size_class,
    indicator,
    value,
    imputed
from placed(reported)
