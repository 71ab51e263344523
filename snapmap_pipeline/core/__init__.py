"""The domain: read → profile → infer → map → transform → validate → export. No Dagster imports here."""
