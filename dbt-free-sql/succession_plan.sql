-- succession_plan: normalising model for the succession_plan entity.
-- Runs after the generic clean-up in core/transform.py (trim, blank -> null, lower-case emails and
-- booleans, exact enum spellings, comma-joined lists); every field of schemas/succession_plan.yaml exists as a column.
-- Companion sheets (SUCCESSION-PLAN-INCUMBENT-LIST, SUCCESSION-PLAN-SUCCESSOR-LIST) are not joined here: core/companion.py attaches them to the
-- validated records (schemas/succession_plan.yaml `companions`).
-- Nothing entity-specific to derive yet: rows pass through unchanged. Add derivations here as
-- SELECT * REPLACE (<expression> AS <FIELD>) FROM mapped. Keep every row and _row.
-- Parameters: :drop_time, :entity, and any tenant parameters (bound as quoted literals).
SELECT * FROM mapped
