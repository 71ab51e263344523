"""Conformance against Eightfold's own XSDs: for every entity and operation, synthetic rows that exercise
every field, list, nested group and custom block are written by `write_xml` and must be valid against
Eightfold's XSD for that operation (`../shared/eightfold-reference/xsd/`) and against our own XSD.

Synthetic rows carry the XML-only values and companion groups (list-of-struct columns) the records need.
Where an entity's YAML makes a valid document impossible, the case is an xfail(strict=True) naming the
exact problem (KNOWN_SCHEMA_PROBLEMS), so it turns into a failure the day the schema is fixed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from snapmap_pipeline.core.export.xml import own_xsd, validate_xml, write_xml
from snapmap_pipeline.core.schema import EntitySchema, load_all
from snapmap_pipeline.errors import UnknownEntityError
from tests.unit.synthetic import synthetic_rows

# (entity, operation) → why no valid document can be written today. Empty: every entity and operation
# validates, the XSD elements beyond MAIN coming from companion sheets (role, succession_plan) and
# XML-only values (demand IS_OPEN, planned_event GROUP_ID); certificate and offer refuse upsert.
KNOWN_SCHEMA_PROBLEMS: dict[tuple[str, str], str] = {}


def _supports(schema: EntitySchema, operation: str) -> bool:
    try:
        schema.operation(operation)
    except UnknownEntityError:
        return False
    return True


def _operations(schema: EntitySchema) -> list[str]:
    """The operations the schema accepts: upsert rides on update unless the schema refuses it."""
    return [op for op in ("ingest", "update", "upsert", "delete") if _supports(schema, op)]


def _cases() -> list:
    cases = []
    for entity, schema in load_all().items():
        for op in _operations(schema):
            marks = []
            if (entity, op) in KNOWN_SCHEMA_PROBLEMS:
                marks.append(pytest.mark.xfail(reason=KNOWN_SCHEMA_PROBLEMS[(entity, op)], strict=True))
            cases.append(pytest.param(entity, op, marks=marks, id=f"{entity}-{op}"))
    return cases


CASES = _cases()


def _eightfold_xsd(reference: Path, schema: EntitySchema, operation: str) -> Path:
    name = schema.operation(operation).xsd
    assert name, f"{schema.entity}.yaml names no Eightfold XSD for {operation}"
    path = reference / "xsd" / name
    assert path.is_file(), f"{schema.entity}.yaml names {name}, which is not in the reference"
    return path


@pytest.mark.parametrize(("entity", "operation"), CASES)
def test_every_field_list_and_group_is_valid_against_eightfold(
    entity: str, operation: str, reference: Path, tmp_path: Path
) -> None:
    schema = load_all()[entity]
    frame = synthetic_rows(schema, operation, n=3)
    report = write_xml(frame, schema, operation, tmp_path / f"{entity}_{operation}.xml")
    assert report.rows == frame.height
    assert report.removed_chars == 0
    text = report.path.read_text(encoding="utf-8")
    for comp in schema.companions_for(operation):  # every companion group is exercised, not left out
        assert text.count(f"<{comp.element}>") >= frame.height, comp.csv_file
    for value in schema.xml_values_for(operation):
        assert text.count(f"<{value.xml}>") == frame.height, value.name
    ours = validate_xml(report.path, own_xsd(entity, operation))
    assert ours == [], f"not valid against our own XSD: {ours}"
    theirs = validate_xml(report.path, _eightfold_xsd(reference, schema, operation))
    assert theirs == [], f"not valid against Eightfold's XSD: {theirs}"


@pytest.mark.parametrize(("entity", "operation"), CASES)
def test_required_fields_alone_are_valid_against_eightfold(
    entity: str, operation: str, reference: Path, tmp_path: Path
) -> None:
    """A row carrying only what the operation requires must already be a valid record: the schema's
    xml_required list is what blocks a row, so it must cover everything the XSD requires."""
    schema = load_all()[entity]
    frame = synthetic_rows(schema, operation, n=2, custom=False)
    frame = frame.select("_row", *schema.required_for(operation, "xml"), *schema.record_requires(operation))
    report = write_xml(frame, schema, operation, tmp_path / f"{entity}_{operation}_min.xml")
    ours = validate_xml(report.path, own_xsd(entity, operation))
    assert ours == [], f"not valid against our own XSD: {ours}"
    theirs = validate_xml(report.path, _eightfold_xsd(reference, schema, operation))
    assert theirs == [], f"not valid against Eightfold's XSD: {theirs}"


def test_every_entity_is_covered() -> None:
    """The 16 entities, each with ingest, update (and upsert) and delete where it has them."""
    schemas = load_all()
    assert len(schemas) == 16
    assert all("ingest" in s.operations or "delete" in s.operations for s in schemas.values())


@pytest.mark.parametrize("entity", [e for e, s in load_all().items() if not _supports(s, "upsert")])
def test_upsert_is_refused_where_the_update_xsd_cannot_say_it(entity: str, tmp_path: Path) -> None:
    """certificate and offer: Eightfold's update XSD gives the record no `operation` attribute, so an
    upsert is refused with a clear error before any file is written, never written as an update."""
    schema = load_all()[entity]
    assert "update" in schema.operations and not schema.operations["update"].upsert
    frame = synthetic_rows(schema, "update", n=1)
    with pytest.raises(UnknownEntityError) as err:
        write_xml(frame, schema, "upsert", tmp_path / "out.xml")
    assert err.value.code == "unsupported_operation"
    assert "update" in err.value.message and "upsert" in err.value.message
    assert not (tmp_path / "out.xml").exists()
