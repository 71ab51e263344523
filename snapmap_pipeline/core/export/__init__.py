"""Exporters: Eightfold XML (streaming), our XSDs, Eightfold CSV, the quarantine CSV and the zip bundle."""

from snapmap_pipeline.core.export.csv import CsvReport, bundle, write_eightfold_csv, write_quarantine_csv
from snapmap_pipeline.core.export.xml import XmlReport, own_xsd, validate_xml, write_xml
from snapmap_pipeline.core.export.xsd import write_all_xsds, xsd_text

__all__ = [
    "CsvReport",
    "XmlReport",
    "bundle",
    "own_xsd",
    "validate_xml",
    "write_all_xsds",
    "write_eightfold_csv",
    "write_quarantine_csv",
    "write_xml",
    "xsd_text",
]
