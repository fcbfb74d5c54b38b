-- grain: one row per indicator for the province (public `headline`), with last year's
-- published value and the change on it
-- input: cells (protected), indicators, previous (last year's published headline; may be empty)
select
    cells.indicator,
    cells.value,
    cells.contributors,
    cells.enterprises,
    cells.conf_status,
    case when previous.conf_status = 'F' then previous.value end as prev_value,
    case
        when cells.conf_status = 'F' and previous.conf_status = 'F' and previous.value > 0
            then round((cells.value - previous.value) / previous.value * 100, 2)
    end as yoy_pct
from cells
join indicators using (indicator)
left join previous using (indicator)
where cells.region_code = '330000' and cells.industry_code = '_T' and cells.size_class = '_T'
order by indicators.position
