"""The entity schemas (schemas/*.yaml) against Eightfold's own CSV spec and XSDs, and the loader's errors.

The spec is parsed here from `csv_spec.txt` (the workbooks dumped to text) and the XSDs with lxml, so
every column name, order, required flag, type and XML path in the YAML is checked against the source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from lxml import etree

from snapmap_pipeline.core.schema import EntitySchema, FieldSpec, load_all, load_schema_file
from snapmap_pipeline.errors import SchemaError

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"
YAML_FILES = sorted(SCHEMAS_DIR.glob("*.yaml"))
ALL_ENTITY_COUNT = 16
CORE_ENTITIES = ("employee", "user", "position", "candidate", "course", "role")
XS = "{http://www.w3.org/2001/XMLSchema}"
SPEC_OPS = {"ingest": "add", "update": "update", "delete": "delete"}

# -- the CSV spec -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpecColumn:
    name: str
    description: str
    data_type: str
    required: bool
    possible: tuple[str, ...]


_FILE_RE = re.compile(r"^##### (\S+)$")
_SHEET_RE = re.compile(r"^--- sheet (.+) (\d+)$")
_ROW_START_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]* \| ")
_MAX_LEN_RE = re.compile(r"Max length:\s*(\d+)\s*characters", re.IGNORECASE)


def parse_spec(text: str) -> dict[str, dict[str, list[SpecColumn]]]:
    """`{workbook: {sheet: [columns]}}` from csv_spec.txt.

    A cell may span several lines (descriptions, possible values one per line), so a line starts a new
    row only when it looks like `NAME | ` and the row before already has all its cells. Each sheet line
    states its row count (header included); the parse is checked against it.
    """
    out: dict[str, dict[str, list[SpecColumn]]] = {}
    declared: dict[tuple[str, str], int] = {}
    raw: dict[tuple[str, str], list[str]] = {}
    widths: dict[tuple[str, str], int] = {}
    book = sheet = None
    # A line-by-line state machine: the dump has no other structure to lean on.
    for line in text.splitlines():
        if m := _FILE_RE.match(line):
            book, sheet = m.group(1), None
            out[book] = {}
            continue
        if m := _SHEET_RE.match(line):
            sheet = m.group(1)
            declared[(book, sheet)] = int(m.group(2))
            raw[(book, sheet)] = []
            continue
        if book is None or sheet is None:
            continue
        key = (book, sheet)
        if key not in widths:
            if line.startswith("Field Name | "):
                widths[key] = len(line.split(" | "))
            continue
        rows = raw[key]
        if _ROW_START_RE.match(line) and (not rows or rows[-1].count(" | ") >= widths[key] - 1):
            rows.append(line)
        elif rows:
            rows[-1] += "\n" + line
    for (book_name, sheet_name), rows in raw.items():
        if (book_name, sheet_name) not in widths:
            continue
        assert len(rows) == declared[(book_name, sheet_name)] - 1, f"{book_name} {sheet_name}: parse"
        cols = []
        for row in rows:
            cells = row.split(" | ", widths[(book_name, sheet_name)] - 1)
            name, desc, dtype, req = (c.strip() for c in cells[:4])
            cols.append(SpecColumn(name, desc, dtype, req == "Required", _possible(cells[5])))
        out[book_name][sheet_name] = cols
    return out


def _possible(cell: str) -> tuple[str, ...]:
    lines = [v.strip() for v in cell.strip().splitlines() if v.strip()]
    if len(lines) == 1 and "," in lines[0]:
        lines = [v.strip() for v in lines[0].split(",") if v.strip()]
    return tuple(lines)


@pytest.fixture(scope="module")
def spec(reference: Path) -> dict[str, dict[str, list[SpecColumn]]]:
    return parse_spec((reference / "csv_spec.txt").read_text(encoding="utf-8"))


def spec_sheet(spec: dict, schema: EntitySchema, op: str) -> list[SpecColumn] | None:
    """The entity's MAIN sheet in the add/update/delete workbook, None if Eightfold has no such op."""
    book = spec.get(f"ef_{schema.entity}_{SPEC_OPS[op]}_csv_schema.xlsx")
    if book is None:
        return None
    assert schema.csv_file in book, f"{schema.entity}: no sheet {schema.csv_file} in {sorted(book)}"
    return book[schema.csv_file]


def merged_order(add: list[str], update: list[str]) -> list[str]:
    """Add-sheet columns, with update-only columns inserted where the update sheet has them."""
    out = list(add)
    for i, name in enumerate(update):
        if name in out:
            continue
        prev = next((update[j] for j in range(i - 1, -1, -1) if update[j] in out), None)
        out.insert(out.index(prev) + 1 if prev else 0, name)
    return out


def noted(schema: EntitySchema, name: str) -> bool:
    """The field is named in spec_notes (a disagreement recorded, not picked silently)."""
    pat = re.compile(rf"\b{re.escape(name)}\b")
    return any(pat.search(note) for note in schema.spec_notes)


# -- the XSDs -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class XsdElement:
    name: str
    min_occurs: str
    max_occurs: str
    node: etree._Element


class Xsd:
    """One operation's XSD with its includes: named types and global elements, and path lookup."""

    def __init__(self, path: Path) -> None:
        self.types: dict[str, etree._Element] = {}
        self.elements: dict[str, etree._Element] = {}
        self.substitutes: dict[str, list[etree._Element]] = {}
        self._load(path, set())

    def _load(self, path: Path, seen: set[Path]) -> None:
        if path in seen:
            return
        seen.add(path)
        root = etree.parse(str(path)).getroot()
        for inc in root.iter(f"{XS}include"):
            self._load(path.parent / inc.get("schemaLocation"), seen)
        for node in root:
            name = node.get("name")
            if node.tag in (f"{XS}complexType", f"{XS}simpleType"):
                self.types[name] = node
            elif node.tag == f"{XS}element":
                self.elements[name] = node
                if node.get("substitutionGroup"):
                    self.substitutes.setdefault(node.get("substitutionGroup"), []).append(node)

    def record_type(self, root: str, record: str) -> etree._Element:
        top = self.elements[root]
        for el in top.iter(f"{XS}element"):
            if el.get("name") == record:
                return self.complex_of(el)
        raise AssertionError(f"no record element {record} under {root}")

    def complex_of(self, el: etree._Element) -> etree._Element | None:
        inline = el.find(f"{XS}complexType")
        if inline is not None:
            return inline
        tname = el.get("type")
        node = self.types.get(tname) if tname else None
        return node if node is not None and node.tag == f"{XS}complexType" else None

    def children(self, ctype: etree._Element) -> dict[str, XsdElement]:
        out: dict[str, XsdElement] = {}
        stack = list(ctype)
        while stack:
            node = stack.pop()
            if node.tag in (f"{XS}all", f"{XS}sequence", f"{XS}choice"):
                stack.extend(node)
            elif node.tag == f"{XS}element":
                mino, maxo = node.get("minOccurs", "1"), node.get("maxOccurs", "1")
                targets = [node]
                if node.get("ref"):
                    ref = self.elements[node.get("ref")]
                    targets = self.substitutes.get(ref.get("name"), []) if ref.get("abstract") else [ref]
                for t in targets:
                    out[t.get("name")] = XsdElement(t.get("name"), mino, maxo, t)
        return out

    def resolve(self, ctype: etree._Element, path: str) -> list[XsdElement] | str:
        """The elements along `path` under the record type, or the reason it does not resolve."""
        chain: list[XsdElement] = []
        current: etree._Element | None = ctype
        for seg in path.split("/"):
            if current is None:
                return f"'{seg}' is under a simple element"
            kids = self.children(current)
            if seg not in kids:
                return f"no element '{seg}' (have {sorted(kids)})"
            chain.append(kids[seg])
            current = self.complex_of(kids[seg].node)
        return chain

    def leaf_simple(self, el: etree._Element) -> tuple[str | None, etree._Element | None]:
        """The leaf's declared type name and its simpleType node (named or inline), if any."""
        inline = el.find(f"{XS}simpleType")
        if inline is not None:
            return None, inline
        tname = el.get("type")
        node = self.types.get(tname) if tname else None
        return tname, node if node is not None and node.tag == f"{XS}simpleType" else None

    def base_type(self, el: etree._Element) -> str | None:
        """The built-in xs: type a leaf's value has (through named types, restrictions, unions)."""
        tname, simple = self.leaf_simple(el)
        for _ in range(10):  # named types chain a few levels at most
            if tname and tname.startswith("xs:"):
                return tname
            if simple is None:
                return None
            union = simple.find(f"{XS}union")
            restriction = simple.find(f"{XS}restriction")
            if union is not None and union.get("memberTypes"):
                tname = union.get("memberTypes").split()[0]
            elif restriction is not None and restriction.get("base"):
                tname = restriction.get("base")
            else:
                return None
            node = self.types.get(tname)
            simple = node if node is not None and node.tag == f"{XS}simpleType" else None
        return None


XSD_TYPES = {
    "xs:date": "date",
    "xs:dateTime": "datetime",
    "xs:boolean": "boolean",
    "xs:int": "integer",
    "xs:integer": "integer",
    "xs:long": "integer",
    "xs:nonNegativeInteger": "integer",
    "xs:positiveInteger": "integer",
    "xs:float": "float",
    "xs:double": "float",
    "xs:decimal": "float",
}
# Spec Data Type → the value types it allows (None: text). "Numeric" covers whole numbers too.
SPEC_TYPES: dict[str, tuple[str | None, ...]] = {
    "boolean": ("boolean",),
    "date": ("date",),
    "datetime": ("datetime",),
    "integer": ("integer",),
    "float": ("float",),
    "decimal": ("float",),
    "numeric": ("float", "integer"),
}


def enum_values(simple: etree._Element | None) -> list[str] | None:
    """Values of an enumeration or of a plain `a|b|c` pattern; None for other simple types."""
    if simple is None:
        return None
    enums = [e.get("value") for e in simple.iter(f"{XS}enumeration")]
    if enums:
        return enums
    pats = [p.get("value") for p in simple.iter(f"{XS}pattern")]
    if len(pats) == 1 and re.fullmatch(r"[\w /-]+(\|[\w /-]+)+", pats[0]):
        return pats[0].split("|")
    return None


@cache
def load_xsd(path: Path) -> Xsd:
    return Xsd(path)


def scalar_type(field: FieldSpec) -> str:
    return (field.item_type or "string") if field.type == "list" else field.type


# -- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schemas() -> dict[str, EntitySchema]:
    load_all.cache_clear()
    loaded = load_all(SCHEMAS_DIR)
    load_all.cache_clear()
    return loaded


def entity_ids() -> list[str]:
    return [p.stem for p in YAML_FILES]


# -- 1. every YAML loads ------------------------------------------------------------------------------


def test_every_schema_file_loads(schemas: dict[str, EntitySchema]) -> None:
    assert len(schemas) == len(YAML_FILES) >= len(CORE_ENTITIES)
    assert set(CORE_ENTITIES) <= set(schemas)
    for path in YAML_FILES:
        assert schemas[path.stem].entity == path.stem, f"{path.name}: entity must match the file name"
    if len(YAML_FILES) >= ALL_ENTITY_COUNT:
        assert len(schemas) == ALL_ENTITY_COUNT


def test_schema_entities_are_the_spec_entities(schemas: dict[str, EntitySchema], spec: dict) -> None:
    spec_entities = {
        m.group(1) for book in spec if (m := re.fullmatch(r"ef_(\w+)_add_csv_schema\.xlsx", book))
    }
    assert len(spec_entities) == ALL_ENTITY_COUNT
    assert set(schemas) <= spec_entities
    if len(YAML_FILES) >= ALL_ENTITY_COUNT:
        assert set(schemas) == spec_entities


# -- 2. columns, order, required flags, types against the CSV spec ------------------------------------


@pytest.mark.parametrize("entity", entity_ids())
def test_columns_match_the_spec(entity: str, schemas: dict[str, EntitySchema], spec: dict) -> None:
    schema = schemas[entity]
    add = spec_sheet(spec, schema, "ingest")
    assert add, f"{entity}: no add sheet in the spec"
    update = spec_sheet(spec, schema, "update") or []
    expected = merged_order([c.name for c in add], [c.name for c in update])
    assert [f.name for f in schema.output_fields] == expected
    for op in SPEC_OPS:
        sheet = spec_sheet(spec, schema, op)
        if sheet is None:
            assert op not in schema.operations, f"{entity}: Eightfold has no {op} spec"
            continue
        assert op in schema.operations, f"{entity}: the spec has a {op} sheet"
        assert [f.name for f in schema.fields_for(op)] == [c.name for c in sheet], op
        assert set(schema.required_for(op, "csv")) == {c.name for c in sheet if c.required}, op


@pytest.mark.parametrize("entity", entity_ids())
def test_required_flags_match_the_add_sheet(
    entity: str, schemas: dict[str, EntitySchema], spec: dict
) -> None:
    schema = schemas[entity]
    add = {c.name: c for c in spec_sheet(spec, schema, "ingest")}
    for field in schema.output_fields:
        assert field.required == (field.name in add and add[field.name].required), field.name


@pytest.mark.parametrize("entity", entity_ids())
def test_max_lengths_follow_the_spec(entity: str, schemas: dict[str, EntitySchema], spec: dict) -> None:
    schema = schemas[entity]
    columns = {c.name: c for op in SPEC_OPS for c in (spec_sheet(spec, schema, op) or [])}
    for field in schema.output_fields:
        if m := _MAX_LEN_RE.search(columns[field.name].description):
            assert field.max_length == int(m.group(1)), f"{field.name}: max length {m.group(1)}"


@pytest.mark.parametrize("entity", entity_ids())
def test_types_and_values_follow_spec_and_xsd(
    entity: str, schemas: dict[str, EntitySchema], spec: dict, reference: Path
) -> None:
    """Where the CSV spec and the XSD agree on a type or on possible values, the YAML follows them.

    Where they disagree (or only one of them constrains), the YAML takes one side and names the field in
    spec_notes: never a silent pick, never a type neither of them gives.
    """
    schema = schemas[entity]
    columns = {c.name: c for op in SPEC_OPS for c in (spec_sheet(spec, schema, op) or [])}
    leaves = xsd_leaves(schema, reference)
    for field in schema.output_fields:
        col = columns[field.name]
        spec_ok = set(SPEC_TYPES.get(col.data_type.lower(), (None,)))
        leaf_type, simple = leaves.get(field.name, (None, None))
        xsd_ok = {XSD_TYPES.get(leaf_type or "")}
        ours = type_category(field)
        where = f"{field.name}: spec {col.data_type}, XSD {leaf_type}, YAML {field.type}"
        if field.name not in leaves:
            assert ours in spec_ok or noted(schema, field.name), where
        elif spec_ok & xsd_ok:
            assert ours in spec_ok & xsd_ok, where
        else:
            assert ours in spec_ok | xsd_ok, where
            assert noted(schema, field.name), f"{where}: spec and XSD differ; say so in spec_notes"
        spec_values = list(col.possible) if col.possible and "boolean" not in spec_ok else None
        xsd_values = enum_values(simple)
        got = field.values if field.type == "enum" or field.item_type == "enum" else None
        if spec_values and xsd_values and set(spec_values) == set(xsd_values):
            assert got == spec_values, f"{field.name}: spec and XSD agree on {spec_values}"
        elif spec_values or xsd_values:
            ok = got is not None and got in (spec_values, xsd_values)
            assert ok or noted(schema, field.name), f"{field.name}: spec {spec_values}, XSD {xsd_values}"
            if spec_values and xsd_values:
                assert noted(schema, field.name), f"{field.name}: spec and XSD values differ"
        else:
            assert got is None, f"{field.name}: values neither the spec nor the XSD gives"


def xsd_leaves(schema: EntitySchema, reference: Path) -> dict[str, tuple[str | None, etree._Element | None]]:
    """Each field's leaf (built-in type, simpleType) in the XSD of the first operation carrying it."""
    out: dict[str, tuple[str | None, etree._Element | None]] = {}
    for op_spec in schema.operations.values():
        xsd = load_xsd(reference / "xsd" / op_spec.xsd)
        record = xsd.record_type(schema.xml.root, schema.xml.record)
        for field in schema.output_fields:
            if field.xml is None or field.name in out:
                continue
            chain = xsd.resolve(record, field.xml)
            if not isinstance(chain, str):
                out[field.name] = (xsd.base_type(chain[-1].node), xsd.leaf_simple(chain[-1].node)[1])
    return out


def type_category(field: FieldSpec) -> str | None:
    """The field's value type as the spec/XSD see it: None for text (string, email, enum)."""
    t = scalar_type(field)
    return t if t in ("date", "datetime", "boolean", "integer", "float") else None


# -- 3. XML paths against the XSDs --------------------------------------------------------------------


@pytest.mark.parametrize("entity", entity_ids())
def test_xml_paths_exist_in_the_xsd(entity: str, schemas: dict[str, EntitySchema], reference: Path) -> None:
    """Each field's whole path resolves in the record type of every operation that carries it."""
    schema = schemas[entity]
    for op, op_spec in schema.operations.items():
        assert op_spec.xsd, f"{entity} {op}: name Eightfold's XSD"
        xsd = load_xsd(reference / "xsd" / op_spec.xsd)
        assert schema.xml.root in xsd.elements, f"{op_spec.xsd}: no root {schema.xml.root}"
        record = xsd.record_type(schema.xml.root, schema.xml.record)
        for field in schema.fields_for(op):
            if field.xml is None:
                assert noted(schema, field.name), f"{field.name}: xml null needs a spec_note saying why"
                continue
            chain = xsd.resolve(record, field.xml)
            if isinstance(chain, str) and op != "ingest" and noted(schema, field.name):
                continue  # the op's sheet carries a column its XSD lacks; recorded in spec_notes
            assert not isinstance(chain, str), f"{entity} {op} {field.name} ({field.xml}): {chain}"


@pytest.mark.parametrize("entity", entity_ids())
def test_xml_path_first_segment_is_declared(
    entity: str, schemas: dict[str, EntitySchema], reference: Path
) -> None:
    schema = schemas[entity]
    names: set[str] = set()
    for op in ("ingest", "update"):
        if op not in schema.operations:
            continue
        xsd_path = reference / "xsd" / schema.operations[op].xsd
        common = xsd_path.with_name(re.sub(r"_(list|update)\.xsd$", "_common.xsd", xsd_path.name))
        for path in (xsd_path, common):
            if path.exists():
                names |= {e.get("name") for e in etree.parse(str(path)).iter(f"{XS}element")}
    for field in schema.output_fields:
        if field.xml:
            assert field.xml.split("/")[0] in names, f"{field.name}: {field.xml}"


@pytest.mark.parametrize("entity", entity_ids())
def test_xml_facts_agree_with_the_xsd(entity: str, schemas: dict[str, EntitySchema], reference: Path) -> None:
    """xml_required, list repetition and NoSpaceString follow the XSD."""
    schema = schemas[entity]
    no_space: set[str] = set()
    for op, op_spec in schema.operations.items():
        xsd = load_xsd(reference / "xsd" / op_spec.xsd)
        record = xsd.record_type(schema.xml.root, schema.xml.record)
        for field in schema.fields_for(op):
            if field.xml is None:
                continue
            chain = xsd.resolve(record, field.xml)
            if isinstance(chain, str) and op != "ingest" and noted(schema, field.name):
                continue
            assert not isinstance(chain, str), f"{field.name}: {chain}"
            leaf_type, _ = xsd.leaf_simple(chain[-1].node)
            if leaf_type == "NoSpaceString":
                no_space.add(field.name)
            if op == "ingest":
                needed = all(e.min_occurs != "0" for e in chain)
                assert field.xml_required == needed, f"{field.name}: XSD minOccurs says {needed}"
            repeated = [e.name for e in chain if e.max_occurs != "1"]
            if field.type == "list":
                assert repeated, f"{field.name}: a list needs a repeated element in {field.xml}"
                assert (field.xml_repeat or field.xml.split("/")[-1]) in repeated, field.name
    for name in no_space:
        assert schema.field(name).no_whitespace, f"{name}: the XSD uses NoSpaceString"


@pytest.mark.parametrize("entity", entity_ids())
def test_operations_name_eightfolds_xsd_files(
    entity: str, schemas: dict[str, EntitySchema], reference: Path
) -> None:
    schema = schemas[entity]
    for op, op_spec in schema.operations.items():
        assert (reference / "xsd" / op_spec.xsd).is_file(), f"{op}: {op_spec.xsd}"
        assert schema.key in [f.name for f in schema.fields_for(op)], f"{op} must carry the key"
    key = schema.field(schema.key)
    assert not key.input_only and key.xml, "the key is exported and has an XML home"


# -- 4. the loader's errors ---------------------------------------------------------------------------

_MINIMAL = """\
entity: widget
title: Widget
csv_file: WIDGET-MAIN
xml: {{root: EF_Widget_List, record: EF_Widget}}
key: WIDGET_ID
operations:
  ingest: {{xml_required: [WIDGET_ID], csv_required: [WIDGET_ID]}}
fields:
  - {{name: WIDGET_ID, xml: widget_id, type: string, required: true, xml_required: true}}
{extra}
"""


def test_minimal_schema_loads(tmp_path: Path) -> None:
    path = tmp_path / "widget.yaml"
    path.write_text(_MINIMAL.format(extra="  - {name: COLOUR, xml: colour}"), encoding="utf-8")
    schema = load_schema_file(path)
    assert schema.field_names == ["WIDGET_ID", "COLOUR"]


def test_loader_rejects_an_unknown_type(tmp_path: Path) -> None:
    path = tmp_path / "widget.yaml"
    path.write_text(_MINIMAL.format(extra="  - {name: COLOUR, xml: colour, type: colour}"), encoding="utf-8")
    with pytest.raises(SchemaError) as err:
        load_schema_file(path)
    assert "widget.yaml" in err.value.message
    assert "COLOUR" in err.value.message


def test_loader_rejects_a_duplicate_field(tmp_path: Path) -> None:
    path = tmp_path / "widget.yaml"
    path.write_text(_MINIMAL.format(extra="  - {name: WIDGET_ID, xml: widget_id}"), encoding="utf-8")
    with pytest.raises(SchemaError) as err:
        load_schema_file(path)
    assert "widget.yaml" in err.value.message
    assert "WIDGET_ID" in err.value.message
    assert err.value.details["field"] == "WIDGET_ID"


def test_load_all_reports_the_bad_file(tmp_path: Path) -> None:
    (tmp_path / "widget.yaml").write_text(_MINIMAL.format(extra=""), encoding="utf-8")
    bad = _MINIMAL.format(extra="  - {name: SIZE, type: huge}").replace("widget", "gadget")
    (tmp_path / "gadget.yaml").write_text(bad, encoding="utf-8")
    load_all.cache_clear()
    try:
        with pytest.raises(SchemaError) as err:
            load_all(tmp_path)
    finally:
        load_all.cache_clear()
    assert "gadget.yaml" in err.value.message
    assert "SIZE" in err.value.message


@pytest.mark.parametrize("entity", entity_ids())
def test_custom_fields_only_where_the_xsd_has_custom_info(
    entity: str, schemas: dict[str, EntitySchema], reference: Path
) -> None:
    schema = schemas[entity]
    xsd = load_xsd(reference / "xsd" / schema.operations["ingest"].xsd)
    record = xsd.record_type(schema.xml.root, schema.xml.record)
    has_custom = any(el.get("name") == "custom_info" for el in record.iter(f"{XS}element"))
    if schema.custom_fields:
        assert has_custom, "custom_fields: true needs a custom_info element in the XSD"
    elif has_custom:
        assert any("EFCUSTOM" in note for note in schema.spec_notes), "say why custom columns are off"


def test_mapping_flags_name_glossary_kinds_and_entities(schemas: dict[str, EntitySchema]) -> None:
    """`record_kind` is a glossary head kind and `refers_to` an entity the glossary has words for, so a
    typo in either cannot silently switch the mapping rule off."""
    from snapmap_pipeline.core.mapping.normalize import load_glossary
    from snapmap_pipeline.settings import Settings

    glossary = load_glossary(Path(Settings().config_dir) / "glossary")
    kinds = set(glossary.head_kinds.values())
    for schema in schemas.values():
        seen: set[str] = set()
        for f in schema.fields:
            if f.record_kind is not None:
                assert f.record_kind in kinds, (schema.entity, f.name, f.record_kind)
                assert f.record_kind not in seen, f"{schema.entity}: two fields claim {f.record_kind}"
                seen.add(f.record_kind)
            if f.refers_to is not None:
                assert f.refers_to in schemas and glossary.entity_words(f.refers_to), (schema.entity, f.name)
