-- grain: one row per size class ('_T' for all) and indicator, for the province (public
-- `by_size`)
-- input: shown (shown.sql: the cells each public table shows, hidden values null),
-- indicators; parameter: table_name
select
    cells.size_class,
    cells.indicator,
    cells.value,
    cells.contributors,
    cells.enterprises,
    cells.imputed,
    cells.imputed_share,
    cells.conf_status
from shown as cells
join indicators on indicators.indicator = cells.indicator
where cells.table_name = $table_name
order by
    case cells.size_class
        when '_T' then 0 when 'large' then 1 when 'medium' then 2 when 'small' then 3 else 4
    end,
    indicators.position
