-- grain: one row per size class ('_T' for all) and indicator, for the province (public
-- `by_size`)
-- input: cells (protected, hidden values null), table_cells, indicators; parameter: table_name
select
    cells.size_class,
    cells.indicator,
    cells.value,
    cells.contributors,
    cells.enterprises,
    cells.conf_status
from cells
join table_cells
    on table_cells.region_code = cells.region_code
    and table_cells.industry_code = cells.industry_code
    and table_cells.size_class = cells.size_class
join indicators on indicators.indicator = cells.indicator
where table_cells.table_name = $table_name
order by
    case cells.size_class
        when '_T' then 0 when 'large' then 1 when 'medium' then 2 when 'small' then 3 else 4
    end,
    indicators.position
