-- planned_event: normalising model for the planned_event entity.
-- Runs after the generic clean-up in core/transform.py (trim, blank -> null, lower-case emails and
-- booleans, exact enum spellings, comma-joined lists); every field of schemas/planned_event.yaml exists as a column.
-- GROUP_ID (the customer's Eightfold group, required by the ingest and update XSDs, no CSV column) is not
-- made here: it is the tenant parameter group_id (config/tenants/<tenant>.yaml, `parameters`), added by
-- core/companion.fill_xml_values after this model; without it the rows are quarantined naming that key.
-- Keep every row and _row. Parameters: :drop_time, :entity, :tenant (tenant parameters are bound too).
SELECT * FROM mapped
