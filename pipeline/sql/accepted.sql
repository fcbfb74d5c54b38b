-- grain: one row per accepted return of the survey year, i.e. one per enterprise that answered:
-- every form column, the codes it is tabulated by (city, section, division), its warnings, cell
-- status and source (the returns of the restricted `enterprises` table, monitoring-tables.md §4)
-- input: returns (the valid layer), industry_sections (GB/T 4754 class → section letter)
select
    returns.* exclude (
        source_file, source_row, source_sha256, cell_status, findings, rejected, warnings,
        outcome, outcome_rule
    ),
    left(returns.region_code, 4) || '00' as city_code,
    industry_sections.section_code,
    left(returns.industry_code, 2) as division_code,
    returns.warnings,
    returns.cell_status,
    returns.source_file,
    returns.source_row
from returns
join industry_sections on industry_sections.industry_code = returns.industry_code
where returns.outcome = 'accepted'
