-- demand: derives IS_OPEN, the xs:boolean the ingest XSD requires and no DEMAND-MAIN column feeds.
-- Runs after the generic clean-up in core/transform.py (trim, blank -> null, lower-case emails and
-- booleans, exact enum spellings, comma-joined lists); every field of schemas/demand.yaml exists as a column.
-- IS_OPEN from DEMAND_STATUS (case, '_' and '-' ignored):
--   open, active, approved, in progress, pending, reopened -> 'true';
--   closed, filled, fulfilled, cancelled, canceled, completed, inactive, withdrawn, expired, rejected
--   -> 'false';
--   any other status -> 'unknown status', which fails the boolean rule: the row is quarantined, not guessed;
--   a blank status -> NULL, filled afterwards from the tenant parameter demand_is_open (default true,
--   schemas/demand.yaml xml_values) by core/companion.fill_xml_values, and counted as derived.
-- Keep every row and _row. Parameters: :drop_time, :entity, :tenant (tenant parameters are bound too).
SELECT
  *,
  CASE
    WHEN DEMAND_STATUS IS NULL THEN NULL
    WHEN REPLACE(REPLACE(LOWER(DEMAND_STATUS), '_', ' '), '-', ' ') IN
      ('open', 'active', 'approved', 'in progress', 'pending', 'reopened') THEN 'true'
    WHEN REPLACE(REPLACE(LOWER(DEMAND_STATUS), '_', ' '), '-', ' ') IN
      ('closed', 'filled', 'fulfilled', 'cancelled', 'canceled', 'completed', 'inactive', 'withdrawn',
       'expired', 'rejected') THEN 'false'
    ELSE 'unknown status'
  END AS IS_OPEN
FROM mapped
