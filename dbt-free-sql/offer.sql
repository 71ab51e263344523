-- offer: normalising model for OFFER-MAIN (CANDIDATE_FULL_NAME is exported as well).
-- Runs after the generic clean-up in core/transform.py (trim, blank -> null, lower-case emails and
-- booleans, exact enum spellings, comma-joined lists); every field of schemas/offer.yaml exists as a column.
-- Derives: CANDIDATE_FIRST_NAME and CANDIDATE_LAST_NAME from CANDIDATE_FULL_NAME where they are blank:
--   "Last, First" -> last = before the comma, first = after it;
--   "First Last"  -> first = the first word, last = the rest ("Jean-Pierre de la Fontaine");
--   one word      -> last name only (the row then fails the first-name rule: never guessed).
-- Keeps every row and _row (transform checks it). Parameters: :drop_time, :entity (unused here).
SELECT * REPLACE (
    COALESCE(
        CANDIDATE_FIRST_NAME,
        CASE
            WHEN STRPOS(CANDIDATE_FULL_NAME, ',') > 0 THEN NULLIF(TRIM(SUBSTR(CANDIDATE_FULL_NAME, STRPOS(CANDIDATE_FULL_NAME, ',') + 1)), '')
            WHEN STRPOS(CANDIDATE_FULL_NAME, ' ') > 0 THEN SPLIT_PART(CANDIDATE_FULL_NAME, ' ', 1)
        END
    ) AS CANDIDATE_FIRST_NAME,
    COALESCE(
        CANDIDATE_LAST_NAME,
        CASE
            WHEN STRPOS(CANDIDATE_FULL_NAME, ',') > 0 THEN NULLIF(TRIM(SPLIT_PART(CANDIDATE_FULL_NAME, ',', 1)), '')
            WHEN STRPOS(CANDIDATE_FULL_NAME, ' ') > 0 THEN TRIM(SUBSTR(CANDIDATE_FULL_NAME, STRPOS(CANDIDATE_FULL_NAME, ' ') + 1))
            ELSE CANDIDATE_FULL_NAME
        END
    ) AS CANDIDATE_LAST_NAME
)
FROM mapped
