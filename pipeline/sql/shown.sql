-- grain: one row per public cell table, cell it shows (pipeline/tabulation.py) and indicator,
-- as published: a hidden cell's value, contributors and imputed share are null, whatever a
-- table's SQL does
-- input: protected (statistical cells_protected: every cell, true values, conf_status),
-- table_cells (table_name and the cells it shows)
select
    table_cells.table_name,
    protected.* replace (
        case when protected.conf_status = 'F' then protected.value end as value,
        case when protected.conf_status = 'F' then protected.contributors end as contributors
    ),
    -- the imputed part of a free, non-zero value (null without a frame: imputed_value is null)
    case
        when protected.conf_status = 'F' and protected.value > 0
            then round(protected.imputed_value / protected.value, 4)
    end as imputed_share
from protected
join table_cells
    on table_cells.region_code = protected.region_code
    and table_cells.industry_code = protected.industry_code
    and table_cells.size_class = protected.size_class
