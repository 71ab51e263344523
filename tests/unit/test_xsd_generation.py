"""Our XSDs: generated from the YAML, checked in unchanged, loadable, and saying what the schema says
(types, enumerations, no-whitespace ids, required elements, lists, groups, custom blocks, unique key)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from lxml import etree

from snapmap_pipeline.core.export.xml import own_xsd, validate_xml, write_xml
from snapmap_pipeline.core.export.xsd import write_all_xsds, xsd_operations, xsd_text
from snapmap_pipeline.core.schema import EntitySchema, load_all, load_schema
from tests.unit.synthetic import synthetic_rows

XS = "{http://www.w3.org/2001/XMLSchema}"
CHECKED_IN = Path(__file__).resolve().parents[2] / "schemas" / "xsd"


@pytest.fixture(scope="module")
def employee() -> EntitySchema:
    return load_schema("employee")


def test_checked_in_xsds_equal_the_generator_output(tmp_path: Path) -> None:
    written = write_all_xsds(tmp_path)
    expected = {p.name: p.read_text(encoding="utf-8") for p in written}
    present = {p.name: p.read_text(encoding="utf-8") for p in CHECKED_IN.glob("*.xsd")}
    stale = sorted(set(present) - set(expected))
    missing = sorted(set(expected) - set(present))
    changed = sorted(n for n in set(expected) & set(present) if expected[n] != present[n])
    hint = "regenerate with `snapmap schema --xsd` (core.export.xsd.write_all_xsds) and commit schemas/xsd/"
    assert not missing, f"missing {missing}: {hint}"
    assert not changed, f"out of date {changed}: {hint}"
    assert not stale, f"no schema writes {stale}: delete them"


def test_one_xsd_per_entity_and_operation(tmp_path: Path) -> None:
    written = write_all_xsds(tmp_path)
    expected = {f"{e}_{op}.xsd" for e, s in load_all().items() for op in xsd_operations(s)}
    assert {p.name for p in written} == expected
    assert own_xsd("employee", "upsert").name == "employee_update.xsd"


@pytest.mark.parametrize("entity", sorted(load_all()))
def test_every_generated_xsd_loads(entity: str) -> None:
    schema = load_schema(entity)
    for op in xsd_operations(schema):
        etree.XMLSchema(etree.fromstring(xsd_text(schema, op).encode()))


def _xsd(schema: EntitySchema, operation: str) -> etree._Element:
    return etree.fromstring(xsd_text(schema, operation).encode())


def _element(root: etree._Element, schema: EntitySchema, path: str) -> etree._Element:
    node = root.find(f"{XS}element/{XS}complexType/{XS}sequence/{XS}element")  # the record
    assert node is not None and node.get("name") == schema.xml.record
    for part in path.split("/"):
        found = [e for e in node.iter(f"{XS}element") if e.get("name") == part and e is not node]
        assert found, f"no element {part} under {node.get('name')}"
        node = found[0]
    return node


def _type_of(element: etree._Element) -> str:
    if element.get("type"):
        return element.get("type")
    restriction = element.find(f"{XS}simpleType/{XS}restriction")
    return restriction.get("base") if restriction is not None else ""


def test_field_types_follow_the_schema(employee: EntitySchema) -> None:
    root = _xsd(employee, "ingest")
    expected = {"date": "xs:date", "datetime": "xs:dateTime", "string": "xs:string", "email": "xs:string"}
    for spec in employee.xml_fields_for("ingest"):
        if spec.type in expected:
            assert _type_of(_element(root, employee, spec.xml)) == expected[spec.type], spec.name


def test_enumerations_patterns_and_lengths(employee: EntitySchema) -> None:
    root = _xsd(employee, "ingest")
    for spec in employee.xml_fields_for("ingest"):
        if spec.type == "list":
            continue
        restriction = _element(root, employee, spec.xml).find(f"{XS}simpleType/{XS}restriction")
        if spec.values:
            assert [e.get("value") for e in restriction.iter(f"{XS}enumeration")] == spec.values
        if spec.no_whitespace:
            assert restriction.find(f"{XS}pattern").get("value") == r"[^\s]+"
        if spec.max_length and not spec.values:
            assert restriction.find(f"{XS}maxLength").get("value") == str(spec.max_length)


@pytest.mark.parametrize("operation", ["ingest", "update", "delete"])
def test_required_elements_follow_the_operation(employee: EntitySchema, operation: str) -> None:
    root = _xsd(employee, operation)
    required = set(employee.required_for(operation, "xml"))
    for spec in employee.xml_fields_for(operation):
        element = _element(root, employee, spec.xml)
        assert (element.get("minOccurs") == "1") is (spec.name in required), spec.name


def test_lists_repeat_and_custom_blocks_are_declared(employee: EntitySchema) -> None:
    root = _xsd(employee, "ingest")
    for spec in employee.xml_fields_for("ingest"):
        if spec.type == "list":
            parts = spec.xml.split("/")
            repeat = spec.xml_repeat or parts[-1]
            element = _element(root, employee, "/".join(parts[: parts.index(repeat) + 1]))
            assert element.get("maxOccurs") == "unbounded", spec.name
    assert _element(root, employee, "custom_info/custom_field").get("maxOccurs") == "unbounded"
    mv = _element(root, employee, "custom_multi_value_list/custom_mv_field/data_list/field_value")
    assert mv.get("maxOccurs") == "unbounded"
    assert not [e for e in _xsd(employee, "delete").iter(f"{XS}element") if e.get("name") == "custom_info"]


def _xml_for(schema: EntitySchema, frame: pl.DataFrame, operation: str, tmp_path: Path) -> Path:
    path = tmp_path / "doc.xml"
    write_xml(frame, schema, operation, path)
    return path


def _xsd_file(schema: EntitySchema, operation: str, tmp_path: Path) -> Path:
    path = tmp_path / "ours.xsd"
    path.write_text(xsd_text(schema, operation), encoding="utf-8")
    return path


def test_our_xsd_accepts_full_synthetic_rows(employee: EntitySchema, tmp_path: Path) -> None:
    for op in ("ingest", "update", "upsert", "delete"):
        doc = _xml_for(employee, synthetic_rows(employee, op, n=4), op, tmp_path)
        assert validate_xml(doc, _xsd_file(employee, op, tmp_path)) == [], op


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("HIRING_DATE", "03/04/2024"),
        ("LAST_ACTIVITY_TS", "2024-01-01"),
        ("EMPLOYEE_ID", "E 1"),
        ("GENDER", "Male"),
    ],  # fmt: skip
)
def test_our_xsd_rejects_what_the_schema_forbids(
    employee: EntitySchema, column: str, value: str, tmp_path: Path
) -> None:
    frame = synthetic_rows(employee, "ingest", n=2).with_columns(pl.lit(value).alias(column))
    doc = _xml_for(employee, frame, "ingest", tmp_path)
    assert validate_xml(doc, _xsd_file(employee, "ingest", tmp_path)) != []


def test_our_xsd_rejects_a_missing_required_element_and_a_duplicate_key(
    employee: EntitySchema, tmp_path: Path
) -> None:
    xsd = _xsd_file(employee, "ingest", tmp_path)
    frame = synthetic_rows(employee, "ingest", n=2)
    required = employee.required_for("ingest", "xml")[-1]
    assert validate_xml(_xml_for(employee, frame.drop(required), "ingest", tmp_path), xsd) != []
    duplicated = frame.with_columns(pl.lit("SAME").alias(employee.key))
    errors = validate_xml(_xml_for(employee, duplicated, "ingest", tmp_path), xsd)
    assert any("unique" in e.lower() or "duplicate" in e.lower() for e in errors)
