-- grain: one row per enterprise of the population and indicator: what the enterprise reports
-- (or is imputed) for the indicator, before it is placed in any cell (contributions.sql places
-- it), and whether it is imputed (monitoring-tables.md §6)
-- input: reported_wide (reported_wide.sql)
unpivot reported_wide
on columns(* exclude (credit_code, region_code, industry_code, size_class, imputed))
into name indicator value value
