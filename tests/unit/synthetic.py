"""Synthetic valid rows for any entity schema, in the validated-frame shape (`_row` + Eightfold field
names, all strings, already normalised). Every field of the operation gets a value of its type, lists get
two items, so every element, list and nested group of the record is exercised; XML-only values get a
value, and each companion sheet of the operation two rows per record, aggregated and attached by
`core/companion.aggregate` as the pipeline does. Other tests reuse it.

    from tests.unit.synthetic import synthetic_rows
    frame = synthetic_rows(load_schema("employee"), "ingest", n=3)
"""

from __future__ import annotations

import polars as pl

from snapmap_pipeline.core.companion import aggregate
from snapmap_pipeline.core.schema import CompanionField, CompanionSpec, EntitySchema, FieldSpec

# One custom column of every Eightfold custom type, single- and multi-valued.
CUSTOM_COLUMNS: dict[str, list[str]] = {
    "EFCUSTOM_STR_COST_CENTER": ["CC-{i} & Co"],
    "EFCUSTOM_INT_BAND": ["{i}"],
    "EFCUSTOM_FLOAT_FTE": ["0.{i}5"],
    "EFCUSTOM_BOOL_REMOTE": ["true", "false"],
    "EFCUSTOM_DATE_REVIEWED": ["2024-02-{d:02d}"],
    "EFCUSTOM_DATETIME_SYNCED": ["2024-02-{d:02d}T08:30:00"],
    "EFCUSTOMLIST_STR_LANGUAGES": ["English, French {i}"],
    "EFCUSTOMLIST_DATE_REVIEWS": ["2024-01-{d:02d}, 2024-03-{d:02d}"],
}


def scalar_value(spec: FieldSpec, kind: str, i: int) -> str:
    """A valid value of `kind` for row `i`: unique per row for ids and emails, inside max_length."""
    d = i % 28 + 1
    if kind == "email":
        local = spec.name.lower().replace("_", ".")
        value = f"{local}.{i}@example.com"
    elif kind == "date":
        value = f"2024-01-{d:02d}"
    elif kind == "datetime":
        value = f"2024-01-{d:02d}T10:20:{i % 60:02d}"
    elif kind == "boolean":
        value = "true" if i % 2 == 0 else "false"
    elif kind == "integer":
        value = str(i + 1)
    elif kind == "float":
        value = f"{i + 1}.5"
    elif spec.values:  # an enum, or a list whose items are restricted
        value = spec.values[i % len(spec.values)]
    elif spec.no_whitespace or spec.key_like:
        value = f"{spec.name.lower()}-{i}"
    else:
        # Markup characters and non-ASCII text exercise escaping and UTF-8.
        value = f"{spec.name.title()} {i} & <Ünïcode>"
    if spec.max_length and len(value) > spec.max_length:
        value = value[-spec.max_length :] if kind != "email" else value
    return value


def field_value(spec: FieldSpec, i: int) -> str:
    """One cell: lists get two comma-separated items of their item type."""
    if spec.type == "list":
        kind = spec.item_type or "string"
        first, second = scalar_value(spec, kind, 2 * i), scalar_value(spec, kind, 2 * i + 1)
        if spec.values and first == second and len(spec.values) > 1:
            second = spec.values[(2 * i + 1) % len(spec.values)]
        return f"{first.replace(',', ' ')}, {second.replace(',', ' ')}"
    return scalar_value(spec, spec.type, i)


def _companion_field_spec(f: CompanionField) -> FieldSpec:
    return FieldSpec(
        name=f.name or f.xml,
        type="list" if f.xml_repeat else ("enum" if f.values else f.type),
        item_type=f.type if f.xml_repeat else None,
        values=f.values,
        no_whitespace=f.no_whitespace,
        max_length=f.max_length,
    )


def companion_rows(
    spec: CompanionSpec, keys: list[str], per_key: int = 2, start_row: int = 2
) -> pl.DataFrame:
    """`per_key` valid rows of a companion sheet for each key (`_row`, the key column, its columns).
    Each row's values differ, so items: key sheets collect several values per record."""
    data: dict[str, list] = {"_row": [], spec.key: []}
    data.update({c: [] for c in spec.columns})
    fields = [
        (f.name, _companion_field_spec(f), f.xml_repeat is not None and spec.items == "row", f.minimum)
        for f in spec.fields
        if f.name
    ]
    row = start_row
    for k, key in enumerate(keys):  # a few synthetic rows per key
        for j in range(per_key):
            i = k * per_key + j
            data["_row"].append(row)
            data[spec.key].append(key)
            for name, fspec, is_list, minimum in fields:
                kind = fspec.item_type or fspec.type if fspec.type == "list" else fspec.type
                value = field_value(fspec, i) if is_list else scalar_value(fspec, kind or "string", i)
                if minimum is not None and kind == "integer":  # e.g. a year: four digits
                    value = str(minimum + i)
                data[name].append(value)
            row += 1
    return pl.DataFrame(data, schema={"_row": pl.Int64, **{c: pl.String for c in data if c != "_row"}})


def synthetic_rows(
    schema: EntitySchema,
    operation: str = "ingest",
    n: int = 3,
    *,
    custom: bool = True,
    start: int = 0,
    companions: bool = True,
) -> pl.DataFrame:
    """`n` valid rows for `operation`: every field of the operation (input-only helpers excluded), plus
    one custom column of each kind when the entity takes custom fields and the operation is not delete,
    plus (with `companions`) the operation's XML-only values and companion groups."""
    rows = range(start, start + n)
    data: dict[str, pl.Series] = {"_row": pl.Series("_row", [i + 2 for i in rows], dtype=pl.Int64)}
    for spec in schema.fields_for(operation):
        data[spec.name] = pl.Series(spec.name, [field_value(spec, i) for i in rows], dtype=pl.String)
    if custom and schema.custom_fields and operation != "delete":
        for name, patterns in CUSTOM_COLUMNS.items():
            values = [patterns[i % len(patterns)].format(i=i, d=i % 28 + 1) for i in rows]
            data[name] = pl.Series(name, values, dtype=pl.String)
    if companions:
        for value in schema.xml_values_for(operation):
            spec = value.as_field()
            data[value.name] = pl.Series(value.name, [field_value(spec, i) for i in rows], dtype=pl.String)
    frame = pl.DataFrame(data)
    if companions and schema.key in frame.columns:
        for comp in schema.companions_for(operation):
            items = aggregate(companion_rows(comp, frame[schema.key].to_list()), comp)
            frame = frame.join(
                items, left_on=schema.key, right_on=comp.key, how="left", maintain_order="left"
            )
    return frame
