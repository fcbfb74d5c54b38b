-- grain: one row per recipient of donor imputation (monitoring-tables.md §6): the donor whose
-- values it takes. The donor class is the recipient's city × section × size class, relaxed to
-- section × size class, then size class, then the province, while it holds no candidate; the
-- donor is the candidate whose sha256 of '<recipient>|<candidate>' sorts first, so a re-run
-- picks the same one.
-- input: recipients (credit_code, city_code, section_code, size_class: from the frame),
-- candidates (this year's accepted enterprises, the same columns)
with placed as (
    select
        recipients.*,
        case
            when exists (
                select 1 from candidates
                where candidates.city_code = recipients.city_code
                    and candidates.section_code = recipients.section_code
                    and candidates.size_class = recipients.size_class
            ) then 1
            when exists (
                select 1 from candidates
                where candidates.section_code = recipients.section_code
                    and candidates.size_class = recipients.size_class
            ) then 2
            when exists (
                select 1 from candidates where candidates.size_class = recipients.size_class
            ) then 3
            else 4
        end as donor_class
    from recipients
),

pairs as (
    select placed.credit_code as recipient, candidates.credit_code as candidate
    from placed
    join candidates using (city_code, section_code, size_class)
    where placed.donor_class = 1
    union all
    select placed.credit_code, candidates.credit_code
    from placed
    join candidates using (section_code, size_class)
    where placed.donor_class = 2
    union all
    select placed.credit_code, candidates.credit_code
    from placed
    join candidates using (size_class)
    where placed.donor_class = 3
    union all
    select placed.credit_code, candidates.credit_code
    from placed
    cross join candidates
    where placed.donor_class = 4
)

select
    recipient as credit_code,
    -- the hash first, the candidate's code after it: equal hashes (never seen) still decide
    min_by(candidate, sha256(recipient || '|' || candidate) || candidate) as donor_credit_code
from pairs
group by recipient
order by recipient
