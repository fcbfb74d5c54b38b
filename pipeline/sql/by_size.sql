-- grain: one row per size class ('_T' for all) and indicator, for the province (public
-- `by_size`)
-- input: cells (protected), indicators
select
    cells.size_class,
    cells.indicator,
    cells.value,
    cells.contributors,
    cells.enterprises,
    cells.conf_status
from cells
join indicators using (indicator)
where cells.region_code = '330000' and cells.industry_code = '_T'
order by
    case cells.size_class
        when '_T' then 0 when 'large' then 1 when 'medium' then 2 when 'small' then 3 else 4
    end,
    indicators.position
