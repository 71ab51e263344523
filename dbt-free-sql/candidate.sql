-- candidate: normalising model for CANDIDATE-MAIN.
-- Runs after the generic clean-up in core/transform.py (trim, blank -> null, lower-case emails and
-- booleans, exact enum spellings, comma-joined lists); every field of schemas/candidate.yaml exists as a column.
-- Derives: FIRST_NAME and LAST_NAME from FULL_NAME where they are blank:
--   "Last, First" -> last = before the comma, first = after it;
--   "First Last"  -> first = the first word, last = the rest ("Jean-Pierre de la Fontaine");
--   one word      -> last name only (the row then fails the first-name rule: never guessed).
-- Keeps every row and _row (transform checks it). Parameters: :drop_time, :entity (unused here).
SELECT * REPLACE (
    COALESCE(
        FIRST_NAME,
        CASE
            WHEN STRPOS(FULL_NAME, ',') > 0 THEN NULLIF(TRIM(SUBSTR(FULL_NAME, STRPOS(FULL_NAME, ',') + 1)), '')
            WHEN STRPOS(FULL_NAME, ' ') > 0 THEN SPLIT_PART(FULL_NAME, ' ', 1)
        END
    ) AS FIRST_NAME,
    COALESCE(
        LAST_NAME,
        CASE
            WHEN STRPOS(FULL_NAME, ',') > 0 THEN NULLIF(TRIM(SPLIT_PART(FULL_NAME, ',', 1)), '')
            WHEN STRPOS(FULL_NAME, ' ') > 0 THEN TRIM(SUBSTR(FULL_NAME, STRPOS(FULL_NAME, ' ') + 1))
            ELSE FULL_NAME
        END
    ) AS LAST_NAME
)
FROM mapped
