"""Entity schemas: Eightfold's contracts, loaded from `schemas/<entity>.yaml` and validated on load.

The YAML is the single source of entity knowledge. Code reads it; it never copies field lists into
constants. No Dagster imports here.

Format (see `schemas/README.md` for the full description)::

    entity: employee
    title: Employee
    csv_file: EMPLOYEE-MAIN
    xml: {root: EF_Employee_List, record: EF_Employee}
    key: EMPLOYEE_ID
    operations:
      ingest: {xml_required: [...], csv_required: [...]}
      update: {xml_required: [EMPLOYEE_ID], csv_required: [EMPLOYEE_ID]}
      delete: {fields: [EMPLOYEE_ID, EMAIL], xml_required: [EMPLOYEE_ID], csv_required: [EMPLOYEE_ID]}
    fields:
      - {name: EMPLOYEE_ID, xml: employee_id, type: string, no_whitespace: true, ...}
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from dataclasses import field as dc_field
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from snapmap_pipeline import yamlfile
from snapmap_pipeline.errors import SchemaError, UnknownEntityError

FieldType = Literal["string", "email", "date", "datetime", "integer", "float", "boolean", "enum", "list"]
Operation = Literal["ingest", "update", "upsert", "delete"]
OPERATIONS: tuple[str, ...] = ("ingest", "update", "upsert", "delete")

CUSTOM_RE = re.compile(r"^EFCUSTOM(LIST)?_(INT|STR|FLOAT|BOOL|DATE|DATETIME)_([A-Za-z0-9_]+)$")
# Eightfold custom column type → (our field type, XSD custom data_type)
CUSTOM_TYPES: dict[str, tuple[str, str]] = {
    "INT": ("integer", "int"),
    "STR": ("string", "string"),
    "FLOAT": ("float", "float"),
    "BOOL": ("boolean", "boolean"),
    "DATE": ("date", "date"),
    "DATETIME": ("datetime", "dateTime"),
}


class FieldSpec(BaseModel):
    """One column of the entity's MAIN sheet, and where it goes in the XML."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Eightfold CSV column name, exactly as the spec spells it.")
    xml: str | None = Field(
        None, description="Path under the record element, '/'-separated. None: CSV only (no XSD element)."
    )
    type: FieldType = "string"
    item_type: FieldType | None = Field(None, description="For type list: the type of each item.")
    xml_repeat: str | None = Field(
        None, description="For type list: the path segment repeated per item (default: the last)."
    )
    xml_first: str | None = Field(
        None,
        description="For type list: also write the first item to this single element (an XSD that "
        "requires one value beside the list, e.g. user `role` beside `roles_list/role`).",
    )
    required: bool = Field(False, description="Required by the CSV spec (ingest).")
    xml_required: bool = Field(False, description="Required by the XSD (ingest).")
    max_length: int | None = None
    values: list[str] | None = Field(None, description="Possible values, exact (enum).")
    no_whitespace: bool = Field(False, description="XSD NoSpaceString: no whitespace inside.")
    description: str = ""
    aliases: list[str] = Field(default_factory=list)
    key_like: bool = Field(False, description="An identifier (own id or a reference to another).")
    refers_to: str | None = Field(
        None,
        description="Entity whose record the field points at (org_unit, ...): a header naming that "
        "entity's record by one of its glossary words ('Team', 'Org Unit ID') means this field.",
    )
    record_kind: str | None = Field(
        None,
        description="A glossary head kind (name, type, url, ...): a header naming only that kind of "
        "value means this field in the entity's file ('name' in a position file is its title).",
    )
    derive: Literal["drop_time"] | None = Field(
        None, description="How the value is derived when no column maps to it (marked derived in the report)."
    )
    input_only: bool = Field(
        False, description="Mapping target only (e.g. FULL_NAME, split by the SQL model); never exported."
    )

    @property
    def xml_is_list(self) -> bool:
        """A list field repeats its last XML element once per item."""
        return self.type == "list"

    @model_validator(mode="after")
    def _check(self) -> FieldSpec:
        if self.type == "enum" and not self.values:
            raise ValueError(f"field {self.name}: type enum needs 'values'")
        if self.item_type is not None and self.type != "list":
            raise ValueError(f"field {self.name}: item_type is only for type list")
        if self.xml_required and not self.xml:
            raise ValueError(f"field {self.name}: xml_required without an xml path")
        return self


class OperationSpec(BaseModel):
    """What one operation (ingest, update/upsert, delete) writes and requires."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fields: list[str] | None = Field(None, description="Fields this operation carries; None = all.")
    xml_required: list[str] = Field(default_factory=list)
    csv_required: list[str] = Field(default_factory=list)
    xsd: str | None = Field(None, description="Eightfold's XSD file name for this operation.")
    upsert: bool = Field(
        True, description="update only: whether the XSD lets a record say operation='upsert'."
    )
    xml_exclude: list[str] = Field(
        default_factory=list,
        description="Fields this operation's CSV carries but its XSD has no element for.",
    )


class XmlValue(BaseModel):
    """An element the XSD wants that no CSV column carries (demand `is_open`, planned_event `group_id`).

    The entity's SQL model makes the column (from other fields, or from the tenant parameter `param`);
    it is written to the XML only, validated after the MAIN contract, and counted as derived.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Column the SQL model writes (upper case, like a field name).")
    xml: str = Field(description="Path under the record element.")
    type: Literal["string", "boolean", "integer", "date", "datetime"] = "string"
    no_whitespace: bool = False
    max_length: int | None = None
    operations: list[Operation] = Field(description="XML forms that carry it (upsert rides on update).")
    required_for: list[Operation] = Field(
        default_factory=list, description="Forms whose XSD requires it: a blank value quarantines the row."
    )
    param: str | None = Field(
        None, description="Tenant parameter (config/tenants/<t>.yaml `parameters`) the SQL model reads."
    )
    default: str | bool | int | None = Field(
        None, description="The parameter's value when the tenant sets none (None: no default)."
    )
    description: str = ""

    @model_validator(mode="after")
    def _check(self) -> XmlValue:
        if self.param is not None and not re.fullmatch(r"[a-z][a-z0-9_]*", self.param):
            raise ValueError(f"xml value {self.name}: param must be lower_snake_case")
        if not set(self.required_for) <= set(self.operations):
            raise ValueError(f"xml value {self.name}: required_for names a form it is not written to")
        return self

    def as_field(self) -> FieldSpec:
        """The value as a FieldSpec, so the XML writer and XSD generator place it like a MAIN field."""
        return FieldSpec(
            name=self.name,
            xml=self.xml,
            type=self.type,
            no_whitespace=self.no_whitespace,
            max_length=self.max_length,
            description=self.description,
        )


class CompanionField(BaseModel):
    """One element of a companion item: a column of the companion sheet, or a constant the XSD needs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(None, description="Column of the companion sheet, as the spec spells it.")
    xml: str = Field(description="Path under the repeated element, '/'-separated.")
    xml_repeat: str | None = Field(
        None,
        description="The segment repeated once per value: values collected from the rows (items: key) "
        "or the items of a comma-separated cell (items: row). On a constant: written inside each "
        "repetition of the column field repeating the same segment (Eightfold's preference_type).",
    )
    value: str | None = Field(None, description="A constant written in every item (no column feeds it).")
    type: Literal["string", "email", "integer", "boolean", "date", "float"] = "string"
    required: bool = Field(False, description="The XSD requires the element in every item.")
    no_whitespace: bool = False
    max_length: int | None = None
    values: list[str] | None = Field(
        None, description="Possible values; matched case-insensitively and written as spelled here."
    )
    minimum: int | None = Field(None, description="Smallest accepted number (integer/float).")
    maximum: int | None = Field(None, description="Largest accepted number (integer/float).")
    split: bool = Field(
        False,
        description="items: key: the cell is a comma-separated list whose items are collected (items: row "
        "splits every xml_repeat field's cell anyway).",
    )
    each: bool = Field(
        False,
        description="items: row: the cell is a comma-separated list and the row gives one item per value, "
        "its other columns repeated in each (DEMAND-PREFERRED-SKILLS).",
    )
    header: bool = Field(
        False, description="items: column: the element holds the column's header as given, not a cell."
    )
    aliases: list[str] = Field(default_factory=list)
    description: str = ""

    @model_validator(mode="after")
    def _check(self) -> CompanionField:
        if (self.name is None) == (self.value is None):
            raise ValueError(f"companion field {self.xml}: give exactly one of name (a column) or value")
        if self.xml_repeat is not None and self.xml_repeat not in self.xml.split("/"):
            raise ValueError(f"companion field {self.xml}: xml_repeat is not a segment of its path")
        if self.split and self.xml_repeat is None:
            raise ValueError(f"companion field {self.xml}: split values need xml_repeat (one element each)")
        if self.each and self.xml_repeat is not None:
            raise ValueError(f"companion field {self.xml}: each makes items, so no xml_repeat")
        if (self.minimum is not None or self.maximum is not None) and self.type not in ("integer", "float"):
            raise ValueError(f"companion field {self.xml}: minimum/maximum are for numbers")
        return self

    @property
    def is_list(self) -> bool:
        """Its struct value is a list (one element per value) rather than a single value."""
        return self.name is not None and self.xml_repeat is not None


@dataclass
class ItemNode:
    """One element of a companion item, as the writer and our XSD lay it out: fields sharing a path
    prefix share its elements (`preferred_years_of_experience` holds type, min and max)."""

    name: str
    field: CompanionField | None = None  # the field whose value (or constant) this element holds
    children: list[ItemNode] = dc_field(default_factory=list)
    repeated: bool = False  # written once per value of the one column field inside it

    def child(self, name: str, repeated: bool) -> ItemNode:
        for c in self.children:
            if c.name == name and c.field is None and c.repeated == repeated:
                return c
        node = ItemNode(name, repeated=repeated)
        self.children.append(node)
        return node

    def fields(self) -> list[CompanionField]:
        """The fields written inside this element, in declared order."""
        own = [self.field] if self.field is not None else []
        return own + [f for c in self.children for f in c.fields()]


class CompanionSpec(BaseModel):
    """A companion sheet (ROLE-ASSOCIATED-TAGS, SUCCESSION-PLAN-INCUMBENT-LIST, ...): rows linked to the
    MAIN record by `key`, written as a repeated group of the record (`xml`: container/repeated element), or
    as one element of the record (`xml`: element, items: key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    csv_file: str = Field(description="The spec's sheet name; also the file name stem and the frame column.")
    key: str = Field(description="The companion column holding the MAIN record's key.")
    xml: str = Field(description="'container/element': the element repeated once per item.")
    items: Literal["row", "key", "column"] = Field(
        "row",
        description="row: one item per companion row; key: one item per MAIN record, values collected; "
        "column: one item per non-key column of the sheet (columns named after tenant values, such as "
        "ROLE-DISPLAY-TAGS), its header in the `header` field and its cells collected in the other.",
    )
    fields: list[CompanionField]
    operations: list[Operation] = Field(
        description="XML forms that carry the group (upsert rides on update)."
    )
    required_for: list[Operation] = Field(
        default_factory=list,
        description="Forms whose XSD requires at least one item: a record without one is quarantined.",
    )
    description: str = ""

    @model_validator(mode="after")
    def _check(self) -> CompanionSpec:
        parts = [p for p in self.xml.split("/") if p]
        if len(parts) < 2 and self.items != "key":
            raise ValueError(
                f"companion {self.csv_file}: xml must be 'container/element' (a bare element holds one "
                "item per record: items: key)"
            )
        columns = [f.name for f in self.fields if f.name]
        if self.key in columns or len(set(columns)) != len(columns):
            raise ValueError(f"companion {self.csv_file}: duplicate column (the key is not a field)")
        if self.items != "row" and any(f.each for f in self.fields):
            raise ValueError(f"companion {self.csv_file}: each (one item per value) is for items: row")
        if self.items != "key" and any(f.split for f in self.fields):
            raise ValueError(f"companion {self.csv_file}: split is for items: key (row mode splits lists)")
        if len([f for f in self.fields if f.each]) > 1:
            raise ValueError(f"companion {self.csv_file}: one field at most makes the items (each)")
        headers = [f for f in self.fields if f.header]
        if self.items == "column":
            cells = [f for f in self.fields if f.name and not f.header]
            if len(headers) != 1 or len(cells) != 1 or cells[0].xml_repeat is None:
                raise ValueError(
                    f"companion {self.csv_file}: items: column needs one header field and one field "
                    "with xml_repeat for the column's values"
                )
        elif headers:
            raise ValueError(f"companion {self.csv_file}: header fields are for items: column")
        if not set(self.required_for) <= set(self.operations):
            raise ValueError(f"companion {self.csv_file}: required_for names a form it is not written to")
        for node in _repeated_nodes(self.item_tree()):
            named = [f for f in node.fields() if f.name]
            if len(named) != 1:
                raise ValueError(
                    f"companion {self.csv_file}: the repeated element {node.name} needs exactly one column "
                    f"field inside it (it repeats once per value of that column), found {len(named)}"
                )
        return self

    @property
    def columns(self) -> list[str]:
        """The sheet's data columns (key excluded), in spec order; for items: column the item's own
        value names (the sheet's columns are the tenant's)."""
        return [f.name for f in self.fields if f.name]

    @property
    def single(self) -> list[str]:
        """items: key columns holding one value per record (no xml_repeat): rows disagreeing are refused."""
        return [f.name for f in self.fields if f.name and self.items == "key" and f.xml_repeat is None]

    @property
    def container(self) -> list[str]:
        return [p for p in self.xml.split("/") if p][:-1]

    @property
    def element(self) -> str:
        return [p for p in self.xml.split("/") if p][-1]

    def item_tree(self) -> ItemNode:
        """The item element and, inside it, the fields' elements merged by shared path prefix, in declared
        order; a field's `xml_repeat` segment is a repeated element of its own."""
        root = ItemNode(self.element)
        for f in self.fields:
            path = [p for p in f.xml.split("/") if p]
            node = root
            for depth, part in enumerate(path):
                repeated = part == f.xml_repeat
                if depth == len(path) - 1:
                    leaf = ItemNode(part, field=f, repeated=repeated)
                    node.children.append(leaf)
                else:
                    node = node.child(part, repeated)
        return root


def _repeated_nodes(node: ItemNode) -> list[ItemNode]:
    out = [node] if node.repeated else []
    for c in node.children:
        out += _repeated_nodes(c)
    return out


def _form(operation: str) -> str:
    """The XML form an operation writes: upsert uses update's."""
    return "update" if operation == "upsert" else operation


class XmlNames(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    root: str
    record: str


class EntitySchema(BaseModel):
    """One Eightfold entity: its MAIN record, key, operations and fields in spec order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entity: str
    title: str
    version: int = 1
    description: str = ""
    csv_file: str
    xml: XmlNames
    key: str
    custom_fields: bool = True
    custom_xml_parent: str | None = Field(
        None, description="Where custom_info / custom_multi_value_list sit, if not at the record level."
    )
    operations: dict[Operation, OperationSpec]
    fields: list[FieldSpec]
    spec_notes: list[str] = Field(
        default_factory=list, description="Where the CSV spec and XSD disagree, said plainly."
    )
    xml_values: list[XmlValue] = Field(
        default_factory=list, description="XSD elements no CSV column feeds, made by the SQL model."
    )
    companions: list[CompanionSpec] = Field(
        default_factory=list, description="Companion sheets written as repeated groups of the record."
    )

    @model_validator(mode="after")
    def _check(self) -> EntitySchema:
        seen: set[str] = set()
        for f in self.fields:
            if f.name in seen:
                raise ValueError(f"duplicate field {f.name}")
            seen.add(f.name)
        if self.key not in seen:
            raise ValueError(f"key {self.key} is not a field")
        for extra in [*(v.name for v in self.xml_values), *(c.csv_file for c in self.companions)]:
            if extra in seen:
                raise ValueError(f"{extra} is declared twice (field, xml value or companion)")
            seen.add(extra)
        for op, spec in self.operations.items():
            for name in [*(spec.fields or []), *spec.xml_required, *spec.csv_required, *spec.xml_exclude]:
                if name not in seen:
                    raise ValueError(f"operation {op} names unknown field {name}")
        return self

    # -- lookups -------------------------------------------------------------------------------------
    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def output_fields(self) -> list[FieldSpec]:
        """Fields that appear in the Eightfold outputs (not input-only helpers), in spec order."""
        return [f for f in self.fields if not f.input_only]

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        for v in self.xml_values:
            if v.name == name:
                return v.as_field()
        custom = custom_field(name, parent=self.custom_xml_parent) if self.custom_fields else None
        if custom is not None:
            return custom
        raise KeyError(name)

    def has_field(self, name: str) -> bool:
        return name in self.field_names or (self.custom_fields and custom_field(name) is not None)

    def operation(self, operation: str) -> OperationSpec:
        op = "update" if operation == "upsert" and "upsert" not in self.operations else operation
        if op not in self.operations or (operation == "upsert" and not self.operations[op].upsert):
            supported = [o for o in OPERATIONS if o in self.operations or (o == "upsert" and self._upserts)]
            why = (
                f"Eightfold's update XSD for {self.entity} has no operation attribute, so an upsert cannot "
                "be written; "
                if operation == "upsert" and op in self.operations
                else ""
            )
            raise UnknownEntityError(
                f"entity {self.entity} does not support operation {operation}: {why}use one of "
                f"{', '.join(supported)} (update changes existing records, ingest adds new ones)",
                code="unsupported_operation",
                entity=self.entity,
                operation=operation,
                supported=supported,
            )
        return self.operations[op]  # type: ignore[index]

    @property
    def _upserts(self) -> bool:
        update = self.operations.get("upsert") or self.operations.get("update")
        return update is not None and update.upsert

    def fields_for(self, operation: str = "ingest") -> list[FieldSpec]:
        """Fields written by `operation`, in spec order."""
        names = self.operation(operation).fields
        if names is None:
            return self.output_fields
        return [f for f in self.output_fields if f.name in names]

    def xml_fields_for(self, operation: str = "ingest") -> list[FieldSpec]:
        """Fields written to `operation`'s XML: those with an XML path, minus the operation's exclusions."""
        exclude = set(self.operation(operation).xml_exclude)
        return [f for f in self.fields_for(operation) if f.xml and f.name not in exclude]

    def required_for(self, operation: str = "ingest", target: Literal["xml", "csv"] = "xml") -> list[str]:
        spec = self.operation(operation)
        return list(spec.xml_required if target == "xml" else spec.csv_required)

    # -- beyond the MAIN columns: XML-only values and companion sheets ------------------------------
    def xml_values_for(self, operation: str = "ingest") -> list[XmlValue]:
        """XML-only values `operation`'s form carries."""
        form = _form(operation)
        return [v for v in self.xml_values if form in v.operations]

    def companions_for(self, operation: str = "ingest") -> list[CompanionSpec]:
        """Companion groups `operation`'s form carries."""
        form = _form(operation)
        return [c for c in self.companions if form in c.operations]

    def companion(self, csv_file: str) -> CompanionSpec:
        for c in self.companions:
            if c.csv_file == csv_file:
                return c
        raise KeyError(csv_file)

    def record_requires(self, operation: str = "ingest") -> list[str]:
        """Columns beyond the MAIN fields that `operation`'s XSD requires in every record: XML-only values
        and companion groups (named by their sheet)."""
        form = _form(operation)
        return [v.name for v in self.xml_values if form in v.required_for] + [
            c.csv_file for c in self.companions if form in c.required_for
        ]

    def sql_params(self) -> dict[str, object]:
        """Default values of the tenant parameters this entity's SQL model reads."""
        return {v.param: v.default for v in self.xml_values if v.param}

    @property
    def fingerprint(self) -> str:
        """Changes whenever the schema's content changes: keys caches such as the field index."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


def custom_field(name: str, parent: str | None = None) -> FieldSpec | None:
    """A FieldSpec for an `EFCUSTOM_<TYPE>_<NAME>` / `EFCUSTOMLIST_<TYPE>_<NAME>` column, else None.

    >>> custom_field("EFCUSTOM_STR_COST_CENTER").xml
    'custom_info'
    """
    m = CUSTOM_RE.match(name)
    if not m:
        return None
    is_list, kind, _ = m.groups()
    ftype, _ = CUSTOM_TYPES[kind]
    prefix = f"{parent}/" if parent else ""
    if is_list:
        return FieldSpec(
            name=name,
            xml=f"{prefix}custom_multi_value_list",
            type="list",
            item_type=ftype,  # type: ignore[arg-type]
        )
    return FieldSpec(name=name, xml=f"{prefix}custom_info", type=ftype)  # type: ignore[arg-type]


def schemas_dir() -> Path:
    from snapmap_pipeline.settings import get_settings

    return get_settings().schemas_dir


def load_schema_file(path: Path) -> EntitySchema:
    """Load and validate one YAML. Errors name the file and the field."""
    try:
        raw = yamlfile.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SchemaError(f"{path.name}: cannot read: {exc}", path=str(path)) from exc
    if not isinstance(raw, dict):
        raise SchemaError(f"{path.name}: not a mapping", path=str(path))
    names = [f.get("name") for f in raw.get("fields", []) if isinstance(f, dict)]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SchemaError(f"{path.name}: duplicate field {dupes[0]}", path=str(path), field=dupes[0])
    try:
        return EntitySchema.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = err.get("loc", ())
        where = _field_name_at(raw, loc)
        raise SchemaError(
            f"{path.name}: {where}{err.get('msg')}", path=str(path), field=where.rstrip(": ") or None
        ) from exc


def _field_name_at(raw: dict, loc: tuple) -> str:
    if len(loc) >= 2 and loc[0] == "fields" and isinstance(loc[1], int):
        try:
            return f"field {raw['fields'][loc[1]].get('name', loc[1])}: "
        except (IndexError, AttributeError):
            return ""
    return ""


def load_all(directory: Path | None = None) -> dict[str, EntitySchema]:
    """All entity schemas, keyed by entity name, sorted. Cached per resolved directory."""
    return _load_all((directory or schemas_dir()).resolve())


def _clear_cache() -> None:
    _load_all.cache_clear()


load_all.cache_clear = _clear_cache  # type: ignore[attr-defined]


@lru_cache(maxsize=4)
def _load_all(directory: Path) -> dict[str, EntitySchema]:
    out: dict[str, EntitySchema] = {}
    for path in sorted(directory.glob("*.yaml")):
        schema = load_schema_file(path)
        out[schema.entity] = schema
    return out


def load_schema(entity: str, directory: Path | None = None) -> EntitySchema:
    schemas = load_all(directory)
    if entity not in schemas:
        raise UnknownEntityError(f"unknown entity '{entity}'; known: {', '.join(schemas)}", entity=entity)
    return schemas[entity]
