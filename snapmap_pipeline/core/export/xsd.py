"""Our own XSDs, generated from `schemas/<entity>.yaml` (one per entity and operation) into `schemas/xsd/`.

They say what our writer promises for each field (types, enumerations, no-whitespace ids, lengths,
required elements, lists, nested groups, custom blocks, a unique key). They are written from the schema
facts, never copied from Eightfold's files, and a test keeps the checked-in copies equal to this output.
No Dagster imports.
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from snapmap_pipeline.core.export.xml import PlanGroup, PlanLeaf, record_plan
from snapmap_pipeline.core.schema import CompanionSpec, EntitySchema, FieldSpec, ItemNode, load_all
from snapmap_pipeline.logs import get_logger

log = get_logger(__name__)

XS = "http://www.w3.org/2001/XMLSchema"
XSD_OPERATIONS: tuple[str, ...] = ("ingest", "update", "delete")  # upsert writes the update form
_BASE_TYPES = {
    "string": "xs:string",
    "email": "xs:string",
    "date": "xs:date",
    "datetime": "xs:dateTime",
    "boolean": "xs:boolean",
    "integer": "xs:integer",
    "float": "xs:float",
    "enum": "xs:string",
    "list": "xs:string",
}
# Custom field data types Eightfold accepts (ef_common_types: CustomFieldType/data_type).
CUSTOM_DATA_TYPES = ("string", "boolean", "date", "dateTime", "int", "float")


def _el(parent: etree._Element, tag: str, **attrs: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{XS}}}{tag}", {k: v for k, v in attrs.items() if v is not None})


def _simple_type(parent: etree._Element, spec: FieldSpec, value_type: str, *, length: bool = True) -> None:
    """Inline restriction for enumerations, no-whitespace ids and max lengths; else a plain type attr.

    `length`: a list field's max_length is for the whole cell, so it is not applied to each item.
    """
    length = length and bool(spec.max_length) and value_type in ("string", "email") and not spec.values
    restricted = spec.values or spec.no_whitespace or length
    if not restricted:
        parent.set("type", _BASE_TYPES[value_type])
        return
    restriction = _el(_el(parent, "simpleType"), "restriction", base=_BASE_TYPES[value_type])
    for value in spec.values or []:
        _el(restriction, "enumeration", value=value)
    if spec.no_whitespace:
        _el(restriction, "pattern", value=r"[^\s]+")
    if length:
        _el(restriction, "maxLength", value=str(spec.max_length))


def _required(node: PlanGroup | PlanLeaf, required: set[str]) -> bool:
    if isinstance(node, PlanLeaf):
        return node.column in required
    return any(_required(e, required) for e in node.entries)


def _repeats(node: PlanGroup | PlanLeaf) -> bool:
    if isinstance(node, PlanLeaf) and node.companion is not None:
        return bool(node.companion.container)  # a bare companion element is one per record
    return isinstance(node, PlanLeaf) and node.kind in ("list", "custom", "custom_list", "companion")


def _children(parent: etree._Element, group: PlanGroup, schema: EntitySchema, required: set[str]) -> None:
    """xs:all when every child occurs at most once (order free, like Eightfold's); xs:sequence in plan
    order when one repeats (the writer emits entries in plan order)."""
    declarations = _merge_repeats(group.entries, required)
    model = _el(parent, "sequence" if any(rep for _, rep, _ in declarations) else "all")
    for entry, repeated, is_required in declarations:
        _node(model, entry, schema, required, repeated=repeated, is_required=is_required)


def _merge_repeats(
    entries: list[PlanGroup | PlanLeaf], required: set[str]
) -> list[tuple[PlanGroup | PlanLeaf, bool, bool]]:
    """(entry, repeated, required) per declaration. Several columns writing the same element in one
    group (two list fields, several custom columns, a single value beside a list) are one declaration,
    repeated; it is required when any of them is."""
    out: list[tuple[PlanGroup | PlanLeaf, bool, bool]] = []
    index: dict[tuple[str, str], int] = {}
    for e in entries:
        if isinstance(e, PlanGroup):
            out.append((e, False, _required(e, required)))
            continue
        key = ("custom", e.element) if e.kind in ("custom", "custom_list") else ("value", e.element)
        if key in index:
            first, _, req = out[index[key]]
            out[index[key]] = (first, True, req or _required(e, required))
            continue
        index[key] = len(out)
        out.append((e, _repeats(e), _required(e, required)))
    return out


def _node(
    model: etree._Element,
    node: PlanGroup | PlanLeaf,
    schema: EntitySchema,
    required: set[str],
    *,
    repeated: bool,
    is_required: bool,
) -> None:
    min_occurs = "1" if is_required else "0"
    max_occurs = "unbounded" if repeated else None
    if isinstance(node, PlanGroup):
        element = _el(model, "element", name=node.name, minOccurs=min_occurs)
        _children(_el(element, "complexType"), node, schema, required)
        return
    if node.kind in ("scalar", "first"):
        spec = schema.field(node.column)
        element = _el(model, "element", name=node.element, minOccurs=min_occurs, maxOccurs=max_occurs)
        if node.kind == "first":
            _simple_type(element, spec, spec.item_type or "string", length=False)
        else:
            _simple_type(element, spec, spec.type)
        return
    if node.kind == "companion" and node.companion is not None:
        repeats = "unbounded" if node.companion.container else None
        element = _el(model, "element", name=node.element, minOccurs=min_occurs, maxOccurs=repeats)
        _companion_item(_el(element, "complexType"), node.companion)
        return
    if node.kind == "list":
        element = _el(model, "element", name=node.element, minOccurs=min_occurs, maxOccurs="unbounded")
        spec = schema.field(node.column)
        target = element
        for name in node.inner:  # elements nested inside each repeated element, around the value
            target = _el(_el(_el(target, "complexType"), "all"), "element", name=name)
        _simple_type(target, spec, spec.item_type or "string", length=False)
        return
    # custom_field / custom_mv_field: the shapes of Eightfold's custom field types
    element = _el(model, "element", name=node.element, minOccurs="0", maxOccurs="unbounded")
    fields = _el(_el(element, "complexType"), "all")
    _el(fields, "element", name="field_name", type="xs:string")
    data_type = _el(
        _el(_el(fields, "element", name="data_type"), "simpleType"), "restriction", base="xs:string"
    )
    for value in CUSTOM_DATA_TYPES:
        _el(data_type, "enumeration", value=value)
    if node.kind == "custom":
        _el(fields, "element", name="field_value", type="xs:string")
    else:
        data_list = _el(_el(_el(fields, "element", name="data_list"), "complexType"), "sequence")
        _el(data_list, "element", name="field_value", type="xs:string", minOccurs="0", maxOccurs="unbounded")


def _companion_item(item_type: etree._Element, spec: CompanionSpec) -> None:
    """One companion item: its elements in declared order (Eightfold's item types are sequences or
    xs:all; the writer emits this order), fields sharing a path prefix under one element. A constant or
    required element must occur, as must the elements on a value's path inside its group; a list field
    repeats its `xml_repeat` segment (with any constants declared inside it)."""
    model = _el(item_type, "sequence")
    tree = spec.item_tree()
    for child in tree.children:
        _item_node(model, child, tree, top=True)


def _always(node: ItemNode) -> bool:
    """Whether the writer always writes the element once its item is written: it holds a constant or a
    required value (a repeated element: its value is required; its constants come with each value)."""
    if node.repeated:
        return any(f.required for f in node.fields() if f.name)
    if node.field is not None:
        return node.field.value is not None or node.field.required
    return any(_always(c) for c in node.children)


def _item_node(
    model: etree._Element, node: ItemNode, parent: ItemNode, *, top: bool = False, inside: bool = False
) -> None:
    """`top`: a child of the item itself; `inside`: under a repeated element, where everything (the one
    value and the constants) is written."""
    named = {f.name for f in node.fields() if f.name}
    # A group is written only when a value under it is, so a child holding all of its values is always in it.
    whole = not top and bool(named) and named == {f.name for f in parent.fields() if f.name}
    if node.repeated:
        [f] = [f for f in node.fields() if f.name]
        min_occurs = "1" if f.required else "0"
    else:
        min_occurs = "1" if inside or _always(node) or whole else "0"
    element = _el(
        model,
        "element",
        name=node.name,
        minOccurs=min_occurs,
        maxOccurs="unbounded" if node.repeated else None,
    )
    if node.field is not None:
        f = node.field
        value = FieldSpec(
            name=f.name or f.xml, type=f.type, no_whitespace=f.no_whitespace, max_length=f.max_length
        )
        _simple_type(element, value, f.type)
        return
    inner = _el(_el(element, "complexType"), "sequence")
    for child in node.children:
        _item_node(inner, child, node, inside=inside or node.repeated)


def _full_plan(schema: EntitySchema, operation: str) -> PlanGroup:
    """Every field of the operation, plus one custom column of each kind to place the custom blocks, the
    XML-only values and the companion groups."""
    columns = list(schema.field_names)
    columns += [v.name for v in schema.xml_values_for(operation)]
    columns += [c.csv_file for c in schema.companions_for(operation)]
    if schema.custom_fields and operation != "delete":
        columns += ["EFCUSTOM_STR_X", "EFCUSTOMLIST_STR_X"]
    return record_plan(schema, operation, columns)


def xsd_text(schema: EntitySchema, operation: str) -> str:
    """Our XSD for one entity and operation (upsert: the update form), as deterministic text."""
    op = "update" if operation == "upsert" else operation
    schema.operation(op)
    required = set(schema.required_for(op, "xml")) | set(schema.record_requires(op))
    plan = _full_plan(schema, op)
    root = etree.Element(f"{{{XS}}}schema", nsmap={"xs": XS})
    root.set("elementFormDefault", "qualified")
    root.append(
        etree.Comment(
            f" Generated from schemas/{schema.entity}.yaml (version {schema.version}, operation {op}) by "
            "snapmap_pipeline.core.export.xsd: snapmap schema (xsd option). Do not edit. "
        )
    )
    top = _el(root, "element", name=schema.xml.root)
    records = _el(_el(top, "complexType"), "sequence")
    record = _el(records, "element", name=schema.xml.record, minOccurs="0", maxOccurs="unbounded")
    record_type = _el(record, "complexType")
    _children(record_type, plan, schema, required)
    attribute = _el(record_type, "attribute", name="operation")
    if op == "update":
        restriction = _el(_el(attribute, "simpleType"), "restriction", base="xs:string")
        for value in ("update", "upsert"):
            _el(restriction, "enumeration", value=value)
    else:
        attribute.set("fixed", op)
    key = schema.field(schema.key)
    if key.xml and key.type != "list" and key.name in {f.name for f in schema.xml_fields_for(op)}:
        unique = _el(top, "unique", name=f"{schema.xml.record}_{schema.key}_unique")
        _el(unique, "selector", xpath=schema.xml.record)
        _el(unique, "field", xpath=key.xml)
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8").decode()


def xsd_operations(schema: EntitySchema) -> list[str]:
    """The XSD forms an entity has: one per operation it declares (upsert shares update's)."""
    return [op for op in XSD_OPERATIONS if op in schema.operations]


def write_all_xsds(out_dir: Path | None = None, schemas: dict[str, EntitySchema] | None = None) -> list[Path]:
    """Write `<entity>_<operation>.xsd` for every entity and operation into `out_dir` (schemas/xsd/)."""
    from snapmap_pipeline.core.schema import schemas_dir

    out_dir = Path(out_dir) if out_dir is not None else schemas_dir() / "xsd"
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for entity, schema in sorted((schemas or load_all()).items()):
        for op in xsd_operations(schema):
            path = out_dir / f"{entity}_{op}.xsd"
            text = xsd_text(schema, op)
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
            written.append(path)
    log.info("xsds written", extra={"fields": {"count": len(written), "dir": str(out_dir)}})
    return written
