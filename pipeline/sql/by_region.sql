-- grain: one row per region (province, its cities, its counties) and indicator (public
-- `by_region`), with last year's published value and the change on it
-- input: shown (shown.sql: the cells each public table shows, hidden values null),
-- regions, indicators, previous (last year's published by_region); parameter: table_name
select
    regions.code as region_code,
    regions.name as region_name,
    regions.level as region_level,
    nullif(regions.parent_code, '') as parent_code,
    cells.indicator,
    cells.value,
    cells.contributors,
    cells.enterprises,
    cells.imputed,
    cells.imputed_share,
    cells.conf_status,
    case when previous.conf_status = 'F' then previous.value end as prev_value,
    case
        when cells.conf_status = 'F' and previous.conf_status = 'F' and previous.value > 0
            then round((cells.value - previous.value) / previous.value * 100, 2)
    end as yoy_pct
from shown as cells
join regions on regions.code = cells.region_code
join indicators on indicators.indicator = cells.indicator
left join previous on previous.region_code = cells.region_code
    and previous.indicator = cells.indicator
where cells.table_name = $table_name
order by regions.code, indicators.position
