-- grain: one row per respondent, cell it counts in and indicator: its value there, 0 included.
-- A respondent (monitoring-tables.md §3, intruder 2) is an enterprise that alone contributes
-- to some non-zero cell, so knows that cell exactly, and its own share everywhere else.
-- input: contributions (contributions.sql), cells (cells.sql), indicators
with respondents as (
    select distinct contributions.credit_code
    from contributions
    join cells using (region_code, industry_code, size_class, indicator)
    join indicators using (indicator)
    where indicators.kind = 'magnitude' and cells.contributors = 1 and contributions.value > 0
)

select
    contributions.credit_code as respondent,
    contributions.region_code,
    contributions.industry_code,
    contributions.size_class,
    contributions.indicator,
    contributions.value
from contributions
join respondents using (credit_code)
join indicators using (indicator)
where indicators.kind = 'magnitude'
order by respondent, region_code, industry_code, size_class, indicator
