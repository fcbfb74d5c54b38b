-- grain: a macro, not a query: what a part of cells.sql (enterprises that count in the same
-- cells) adds up for one indicator, as a struct, from each enterprise's value of it (null: none)
-- and whether the enterprise is imputed. Amounts are summed as the decimals they are (2 places,
-- survey-form §2): summed as doubles, the last digits of a total depended on the order DuckDB's
-- threads added them in, so a year run again could publish other bytes.
create or replace macro part_sums(indicator_value, imputed) as struct_pack(
    value := sum(indicator_value::decimal(38, 2)),
    contributors := count_if(indicator_value > 0),
    -- an enterprise with no value for the indicator is not in the indicator's counts
    enterprises := count(indicator_value) filter (where not imputed),
    imputed := count(indicator_value) filter (where imputed),
    imputed_value := coalesce(sum(indicator_value::decimal(38, 2)) filter (where imputed), 0),
    largest := max(indicator_value, 2)
)
