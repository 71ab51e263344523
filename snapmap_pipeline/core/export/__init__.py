"""Exporters: Eightfold XML (streaming), Eightfold CSV, the quarantine CSV and the zip bundle."""

from snapmap_pipeline.core.export.xml import XmlReport, own_xsd, validate_xml, write_xml

__all__ = ["XmlReport", "own_xsd", "validate_xml", "write_xml"]
