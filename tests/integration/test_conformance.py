"""Conformance against Eightfold's own XSDs: for every entity and operation, synthetic rows that exercise
every field, list, nested group and custom block are written by `write_xml` and must be valid against
Eightfold's XSD for that operation (`../shared/eightfold-reference/xsd/`) and against our own XSD.

Where an entity's YAML makes a valid document impossible, the case is an xfail(strict=True) naming the
exact problem, so it turns into a failure (to remove the mark) the day the schema is fixed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from snapmap_pipeline.core.export.xml import own_xsd, validate_xml, write_xml
from snapmap_pipeline.core.schema import EntitySchema, load_all
from snapmap_pipeline.errors import UnknownEntityError
from tests.unit.synthetic import synthetic_rows

_UPSERT_ATTRIBUTE = (
    "{entity}: Eightfold's update XSD gives the record no `operation` attribute, so an XML upsert cannot be "
    "said; the schema needs a way to mark upsert unsupported (or attribute-less) for this entity"
)
# (entity, operation) → why no valid document can be written from the entity's MAIN columns today.
KNOWN_SCHEMA_PROBLEMS: dict[tuple[str, str], str] = {
    ("certificate", "upsert"): _UPSERT_ATTRIBUTE.format(entity="certificate"),
    ("offer", "upsert"): _UPSERT_ATTRIBUTE.format(entity="offer"),
    ("demand", "ingest"): "demand: the ingest XSD requires is_open, which no DEMAND-MAIN field feeds",
    ("planned_event", "ingest"): "planned_event: the XSD requires group_id, which no field feeds",
    ("planned_event", "update"): "planned_event: the XSD requires group_id, which no field feeds",
    ("planned_event", "upsert"): "planned_event: the XSD requires group_id, which no field feeds",
    ("role", "ingest"): "role: the XSD requires associated_tags (ROLE-ASSOCIATED-TAGS sheet), not in MAIN",
    ("role", "update"): "role: the XSD requires associated_tags (ROLE-ASSOCIATED-TAGS sheet), not in MAIN",
    ("role", "upsert"): "role: the XSD requires associated_tags (ROLE-ASSOCIATED-TAGS sheet), not in MAIN",
    ("succession_plan", "ingest"): (
        "succession_plan: the ingest XSD requires incumbent_list (SUCCESSION-PLAN-INCUMBENT-LIST sheet), "
        "which no MAIN field feeds"
    ),
}


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
    frame = frame.select("_row", *schema.required_for(operation, "xml"))
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
