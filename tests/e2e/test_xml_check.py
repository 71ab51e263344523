"""The blocking `xml_valid` check: it trusts the export's own check only when that covered every record."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from snapmap_pipeline.core.export.xml import XsdChecker, own_xsd, write_xml
from snapmap_pipeline.core.schema import load_schema
from snapmap_pipeline.defs.drops.checks import xml_valid
from tests.unit.synthetic import synthetic_rows


def test_a_full_check_while_writing_is_the_answer_and_the_file_is_not_read_again(tmp_path: Path) -> None:
    outputs = {"xsd_checked": {"records": 3, "of": 3, "sampled": False}, "xsd_errors": ["line 4: bad"]}
    result = xml_valid(tmp_path / "never-written.xml", "employee", "ingest", outputs)
    assert not result.passed
    assert result.metadata["errors"].value == 1


def test_a_sampled_check_is_redone_on_the_whole_file(tmp_path: Path) -> None:
    schema = load_schema("employee")
    frame = synthetic_rows(schema, "ingest", n=3)
    # only the third record is bad: the sample (the first record) cannot see it
    frame = frame.with_columns(pl.Series("HIRING_DATE", [*frame["HIRING_DATE"].to_list()[:2], "not a date"]))
    checker = XsdChecker(own_xsd("employee", "ingest"), schema.xml.root, schema.xml.record, sample_records=1)
    path = tmp_path / "employee.xml"
    write_xml(frame, schema, "ingest", path, on_chunk=checker)
    sampled = checker.finish()
    assert sampled == []
    outputs = {
        "xsd_checked": {"records": checker.checked, "of": checker.written, "sampled": True},
        "xsd_errors": sampled,
    }
    result = xml_valid(path, "employee", "ingest", outputs)
    assert not result.passed
    assert result.metadata["checked"].value == "the whole file, after writing"
