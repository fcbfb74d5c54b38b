-- grain: one row per region at every level, plus 000000 'unknown' for rows whose region could
-- not be read (public `data_quality`, monitoring-tables.md §4)
-- input: returns (the valid layer), files (every landed file: source_file, status), frame
-- (region_code, credit_code of the frame's enterprises; empty without a frame), frame_rejected
-- (region_code as received of each N402 row), population (the statistical layer: region_code,
-- imputation), regions, region_rollup (a county, or 000000, to every region its rows count in:
-- pipeline/tabulation.py); parameter: has_frame
with located as (
    -- a row whose region is not a county code counts for 'unknown' (and the province)
    select
        returns.* exclude (region_code),
        coalesce(counties.code, '000000') as county_code
    from returns
    left join regions as counties
        on counties.code = returns.region_code and counties.level = 'county'
),

placed as (
    select region_rollup.ancestor as region_code, located.*
    from located
    join region_rollup on region_rollup.code = located.county_code
),

row_counts as (
    select
        region_code,
        count(distinct source_file) as files_with_rows,
        count(*) as rows_read,
        count(*) filter (where outcome = 'accepted') as rows_accepted,
        count(*) filter (where outcome = 'rejected') as rows_rejected,
        count(*) filter (where outcome = 'superseded') as rows_superseded,
        count(*) filter (where outcome = 'duplicate') as rows_duplicate,
        count(*) filter (where outcome = 'accepted' and len(warnings) > 0) as rows_with_warnings
    from placed
    group by region_code
),

quarantined as (
    select count(*) as files from files where status = 'quarantined'
),

frame_located as (
    select
        coalesce(counties.code, '000000') as county_code,
        -- responded: an accepted return, so frame_enterprises - frame_responded is the N401 count
        exists (
            select 1 from returns
            where returns.credit_code = frame.credit_code and returns.outcome = 'accepted'
        ) as responded
    from frame
    left join regions as counties
        on counties.code = frame.region_code and counties.level = 'county'
),

frame_counts as (
    select
        region_rollup.ancestor as region_code,
        count(*) as frame_enterprises,
        count(*) filter (where frame_located.responded) as frame_responded
    from frame_located
    join region_rollup on region_rollup.code = frame_located.county_code
    group by region_rollup.ancestor
),

imputed_counts as (
    select
        region_rollup.ancestor as region_code,
        count(*) filter (where population.imputation = 'ratio') as imputed_ratio,
        count(*) filter (where population.imputation = 'donor') as imputed_donor
    from population
    join region_rollup on region_rollup.code = population.region_code
    where population.imputation is not null
    group by region_rollup.ancestor
),

rejected_counts as (
    -- a row left out for its region code counts for 'unknown' (and the province)
    select region_rollup.ancestor as region_code, count(*) as frame_rejected_codes
    from frame_rejected
    left join regions as counties
        on counties.code = frame_rejected.region_code and counties.level = 'county'
    join region_rollup on region_rollup.code = coalesce(counties.code, '000000')
    group by region_rollup.ancestor
),

areas as (
    select code as region_code, level as region_level from regions
    union all
    select '000000', 'unknown'
)

select
    areas.region_code,
    areas.region_level,
    case areas.region_code
        when '330000' then (select count(*) from files)
        when '000000' then coalesce(row_counts.files_with_rows, 0) + quarantined.files
        else coalesce(row_counts.files_with_rows, 0)
    end as files_received,
    case when areas.region_code in ('330000', '000000') then quarantined.files else 0 end
        as files_quarantined,
    coalesce(row_counts.rows_read, 0) as rows_read,
    coalesce(row_counts.rows_accepted, 0) as rows_accepted,
    coalesce(row_counts.rows_rejected, 0) as rows_rejected,
    coalesce(row_counts.rows_superseded, 0) as rows_superseded,
    coalesce(row_counts.rows_duplicate, 0) as rows_duplicate,
    coalesce(row_counts.rows_with_warnings, 0) as rows_with_warnings,
    case when $has_frame then coalesce(frame_counts.frame_enterprises, 0) end
        as frame_enterprises,
    case when $has_frame then coalesce(frame_counts.frame_responded, 0) end as frame_responded,
    case
        when $has_frame and frame_counts.frame_enterprises > 0
            then frame_counts.frame_responded / frame_counts.frame_enterprises
    end as response_rate,
    case when $has_frame then coalesce(imputed_counts.imputed_ratio, 0) end as imputed_ratio,
    case when $has_frame then coalesce(imputed_counts.imputed_donor, 0) end as imputed_donor,
    case when $has_frame then coalesce(rejected_counts.frame_rejected_codes, 0) end
        as frame_rejected_codes
from areas
cross join quarantined
left join row_counts using (region_code)
left join frame_counts using (region_code)
left join imputed_counts using (region_code)
left join rejected_counts using (region_code)
order by areas.region_code = '000000', areas.region_code
