"""Companion sheets and XML-only values: what Eightfold's XSD needs in a record beyond the MAIN columns.

Companion sheets (ROLE-ASSOCIATED-TAGS, SUCCESSION-PLAN-INCUMBENT-LIST, ...) are read, mapped by their spec
column names (or, items: column, taken column by column, as ROLE-DISPLAY-TAGS names its columns after the
tenant's tags), validated, aggregated per MAIN key into list-of-struct columns (one item per row, per record
or per column) and attached to the valid MAIN frame; XML-only values (demand IS_OPEN, planned_event
GROUP_ID) are filled from tenant parameters.
Everything comes from the schema's `companions` / `xml_values`; no entity names here. No Dagster imports.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from snapmap_pipeline.core.schema import CompanionField, CompanionSpec, EntitySchema
from snapmap_pipeline.errors import InputError
from snapmap_pipeline.logs import get_logger
from snapmap_pipeline.settings import Settings, get_settings

log = get_logger(__name__)

ROW = "_row"
KEY = "__key"
QUARANTINE_COLUMNS = ("_rule", "_column", "_message")
SEPARATOR = "; "
_NORM_RE = re.compile(r"[^a-z0-9]+")
_QUARANTINE_SCHEMA = {ROW: pl.Int64, "_rule": pl.String, "_column": pl.String, "_message": pl.String}


def _booleans() -> dict[str, str]:
    """Spellings of true/false, the MAIN validator's (config/validation.yaml `boolean_values`)."""
    from snapmap_pipeline.core.validate import validation_config

    return validation_config(get_settings()).booleans


def _norm(text: str) -> str:
    return _NORM_RE.sub(" ", text.lower()).strip()


# -- which companion a file is ---------------------------------------------------------------------------
def companion_for_name(schema: EntitySchema, name: str, *, sheet: bool = False) -> CompanionSpec | None:
    """The declared companion a file or sheet name stands for: its stem starts with the sheet name (case,
    `_`/`-` and suffixes such as `_sample` or a date ignored); the longest match wins.

    >>> companion_for_name(load_schema("role"), "ROLE-ASSOCIATED-TAGS_2024.csv").csv_file  # doctest: +SKIP
    'ROLE-ASSOCIATED-TAGS'
    >>> companion_for_name(load_schema("role"), "Associated Tags", sheet=True).csv_file  # doctest: +SKIP
    'ROLE-ASSOCIATED-TAGS'
    """
    stem = Path(name).name.rsplit(".", 1)[0] if "." in Path(name).name else Path(name).name
    stem = stem.upper().replace("_", "-").replace(" ", "-")
    # Inside the entity's own workbook a sheet may drop the entity prefix ("Associated Tags"); a dropped
    # file may not, since a bare "followers.csv" in a drop folder could be anything.
    prefix = schema.csv_file.removesuffix("MAIN")

    def names(c: CompanionSpec) -> tuple[str, ...]:
        short = c.csv_file.removeprefix(prefix)
        return (c.csv_file, short) if sheet and short != c.csv_file else (c.csv_file,)

    found = [c for c in schema.companions for n in names(c) if stem == n or stem.startswith(n + "-")]
    return max(found, key=lambda c: len(c.csv_file)) if found else None


def is_workbook(filename: str) -> bool:
    """Whether the file can hold companion sheets beside its MAIN sheet."""
    return filename.lower().endswith((".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"))


# -- reading ---------------------------------------------------------------------------------------------
@dataclass
class CompanionInput:
    """One companion sheet as read: the source rows (for its quarantine) and the mapped rows."""

    spec: CompanionSpec
    filename: str
    source: pl.DataFrame  # _row + the sheet's own columns, as read
    mapped: pl.DataFrame  # _row, the key column, the companion's columns (strings, blanks null)
    unmapped: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # mapped's data columns (items: column: the sheet's)


def _match_columns(spec: CompanionSpec, main_key: str, headers: list[str]) -> dict[str, str]:
    """Companion column → source header: the spec name, the MAIN key's name for the key, or an alias,
    compared case-, space- and punctuation-insensitively."""
    by_norm: dict[str, str] = {}
    for h in headers:
        by_norm.setdefault(_norm(h), h)
    wanted: list[tuple[str, list[str]]] = [(spec.key, [spec.key, main_key])]
    wanted += [(f.name, [f.name, *f.aliases]) for f in spec.fields if f.name]
    out: dict[str, str] = {}
    taken: set[str] = set()
    # Exact spec names first, then aliases: a loop over a handful of columns.
    for pass_aliases in (False, True):
        for column, names in wanted:
            if column in out:
                continue
            for candidate in names if pass_aliases else names[:1]:
                header = by_norm.get(_norm(candidate))
                if header is not None and header not in taken:
                    out[column] = header
                    taken.add(header)
                    break
    return out


def read_companion(
    data: bytes,
    filename: str,
    schema: EntitySchema,
    spec: CompanionSpec | None = None,
    *,
    sheet: str | None = None,
    settings: Settings | None = None,
) -> CompanionInput:
    """Read one companion file (CSV or a workbook sheet) with the project's reader and map its columns.

    Raises InputError when the file is no declared companion of the entity or lacks the key column.
    """
    from snapmap_pipeline.core.read import read_bytes

    settings = settings or get_settings()
    spec = spec or companion_for_name(schema, sheet or filename, sheet=sheet is not None)
    if spec is None:
        declared = ", ".join(c.csv_file for c in schema.companions) or "none"
        raise InputError(
            f"'{filename}' is not a companion sheet of {schema.entity} (declared: {declared}); name the file "
            "after one of them, e.g. ROLE-ASSOCIATED-TAGS.csv",
            code="unknown_companion",
            file=filename,
            entity=schema.entity,
        )
    df, report = read_bytes(data, filename, sheet=sheet, settings=settings)
    first_row = report.header_row + 2  # spreadsheet row of the first record, as the MAIN file's
    df = df.with_row_index(ROW, offset=first_row).with_columns(pl.col(ROW).cast(pl.Int64))
    if df.width > 1:
        df = df.filter(~pl.all_horizontal(pl.exclude(ROW).is_null()))
    headers = [c for c in df.columns if c != ROW]
    matched = _match_columns(spec, schema.key, headers)
    if spec.key not in matched:
        raise InputError(
            f"'{filename}' ({spec.csv_file}) has no {spec.key} column linking its rows to {schema.csv_file}; "
            f"its headers are {', '.join(headers)}. Rename the key column to {spec.key}.",
            code="companion_key_missing",
            file=filename,
            sheet=spec.csv_file,
        )
    if spec.items == "column":
        # Every other column is an item named by its header (the tenant's display tags); a blank header
        # (the reader's `col_N` at position N) names nothing, so it is reported, not written.
        generated = {h for i, h in enumerate(headers, start=1) if h == f"col_{i}"}
        matched = {spec.key: matched[spec.key]}
        matched |= {h: h for h in headers if h != matched[spec.key] and h not in generated}
        columns = [h for h in headers if h in matched and h != matched[spec.key]]
    else:
        columns = spec.columns
    exprs = [pl.col(ROW)]
    for column in [spec.key, *columns]:
        if column in matched:
            value = pl.col(matched[column]).cast(pl.String).str.strip_chars()
            exprs.append(pl.when(value != "").then(value).alias(column))
        else:
            exprs.append(pl.lit(None, pl.String).alias(column))
    unmapped = sorted(set(headers) - set(matched.values()))
    log.info(
        "companion read",
        extra={"fields": {"sheet": spec.csv_file, "rows": df.height, "unmapped": len(unmapped)}},
    )
    return CompanionInput(spec, filename, df, df.select(exprs), unmapped, columns)


def read_companions(
    files: Mapping[str, bytes], schema: EntitySchema, settings: Settings | None = None
) -> list[CompanionInput]:
    """Each named file read as its companion sheet. Two files for one sheet is an InputError."""
    out: dict[str, CompanionInput] = {}
    for name, data in files.items():  # a loop over files, not rows
        inp = read_companion(data, name, schema, settings=settings)
        if inp.spec.csv_file in out:
            raise InputError(
                f"two files for {inp.spec.csv_file}: '{out[inp.spec.csv_file].filename}' and '{name}'; "
                "give one file per companion sheet",
                code="duplicate_companion",
                sheet=inp.spec.csv_file,
            )
        out[inp.spec.csv_file] = inp
    return list(out.values())


def workbook_companions(
    data: bytes, filename: str, schema: EntitySchema, settings: Settings | None = None
) -> list[CompanionInput]:
    """The sheets of an Excel workbook named like one of the entity's companions (the MAIN sheet aside)."""
    if not schema.companions or not is_workbook(filename):
        return []
    import fastexcel  # only for workbooks

    try:
        names = list(fastexcel.read_excel(data).sheet_names)
    except fastexcel.FastExcelError:
        return []  # the MAIN read already reported what is wrong with the workbook
    out = []
    for name in names:  # a loop over sheets
        spec = companion_for_name(schema, name, sheet=True)
        if spec is not None:
            out.append(read_companion(data, filename, schema, spec, sheet=name, settings=settings))
    return out


# -- validating and aggregating --------------------------------------------------------------------------
_CheckT = tuple[str, str, pl.Expr, str]  # (rule, column, fails, message)


def _governed(spec: CompanionSpec, f: CompanionField, columns: list[str]) -> list[str]:
    """The frame columns a field's rules apply to: its own, or (items: column) every column of the sheet."""
    if f.name is None or f.header:
        return []
    return columns if spec.items == "column" else [f.name]


def _value_checks(f: CompanionField, name: str, sheet: str) -> list[_CheckT]:
    """(rule, column, fails, message) for one column holding `f`'s values."""
    col = pl.col(name)
    checks: list[_CheckT] = []
    if f.required:
        blank = col.is_null()
        if f.each or f.xml_repeat:  # a list cell of nothing but commas holds no item either
            blank = blank | col.str.contains(r"^[\s,]*$")
        checks.append(("required", name, blank, f"{name} is required in {sheet} and is blank"))
    if f.type == "integer":
        bad = ~col.str.contains(r"^[+-]?\d+(\.0+)?$")
        checks.append(("integer", name, bad, f"{name} is not a whole number"))
    elif f.type == "float":
        bad = ~col.str.contains(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
        checks.append(("float", name, bad, f"{name} is not a number (use a dot for decimals)"))
    elif f.type == "boolean":
        bad = ~col.str.to_lowercase().is_in(list(_booleans()))
        checks.append(("boolean", name, bad, f"{name} is not a yes/no value (true/false)"))
    elif f.type == "date":
        bad = ~col.str.contains(r"^\d{4}-\d{2}-\d{2}$")
        checks.append(("date", name, bad, f"{name} is not a date in yyyy-MM-dd form"))
    elif f.type == "email":
        bad = ~col.str.contains(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
        checks.append(("email", name, bad, f"{name} is not an email address"))
    if f.type in ("integer", "float") and (f.minimum is not None or f.maximum is not None):
        number = col.cast(pl.Float64, strict=False)  # a non-number already failed its type rule
        low = number < f.minimum if f.minimum is not None else pl.lit(False)
        high = number > f.maximum if f.maximum is not None else pl.lit(False)
        span = f"from {f.minimum}" if f.minimum is not None else ""
        span += f" up to {f.maximum}" if f.maximum is not None else " or more"
        checks.append(("range", name, low | high, f"{name} must be a number {span.strip()}"))
    if f.values:
        bad = ~col.str.to_lowercase().is_in([v.lower() for v in f.values])
        checks.append(("enum", name, bad, f"{name} must be one of {', '.join(f.values)}"))
    if f.no_whitespace:
        checks.append(("no_whitespace", name, col.str.contains(r"\s"), f"{name} must not contain spaces"))
    if f.max_length:
        checks.append(
            (
                "max_length",
                name,
                col.str.len_chars() > f.max_length,
                f"{name} is longer than {f.max_length} characters",
            )
        )
    return checks


def _field_checks(spec: CompanionSpec, columns: list[str] | None = None) -> list[_CheckT]:
    """(rule, column, fails, message) for the companion's key and columns (`columns`: the frame's data
    columns, which items: column sheets name themselves)."""
    columns = spec.columns if columns is None else columns
    checks: list[_CheckT] = [
        (
            "required",
            spec.key,
            pl.col(spec.key).is_null(),
            f"{spec.key} is blank: each {spec.csv_file} row must name its record",
        )
    ]
    for f in spec.fields:
        for name in _governed(spec, f, columns):
            checks += _value_checks(f, name, spec.csv_file)
    return checks


def _normalised(spec: CompanionSpec, columns: list[str] | None = None) -> list[pl.Expr]:
    """Eightfold text forms: whole numbers without '.0', booleans true/false, possible values as spelled
    in the schema."""
    columns = spec.columns if columns is None else columns
    out = []
    for f in spec.fields:
        for name in _governed(spec, f, columns):
            col = pl.col(name)
            if f.type == "integer":
                col = col.str.replace(r"\.0+$", "").str.strip_prefix("+")
            elif f.type == "boolean":
                col = col.str.to_lowercase().replace_strict(_booleans(), default=None, return_dtype=pl.String)
            if f.values:
                canonical = {v.lower(): v for v in f.values}
                col = col.str.to_lowercase().replace_strict(canonical, default=col, return_dtype=pl.String)
            out.append(col.alias(name))
    return out


def _conflicts(rows: pl.DataFrame, spec: CompanionSpec) -> pl.DataFrame:
    """Quarantine rows (`_row, _rule, _column, _message`) of records whose rows give different values for a
    one-per-record column (items: key, no xml_repeat): Eightfold takes one, and picking is guessing."""
    single = spec.single
    if not single or rows.height == 0:
        return pl.DataFrame(schema=_QUARANTINE_SCHEMA)
    counts = rows.group_by(spec.key).agg([pl.col(c).drop_nulls().n_unique().alias(c) for c in single])
    flagged = rows.join(counts.rename({c: f"__n_{c}" for c in single}), on=spec.key, how="left")
    checks = [
        (
            "conflicting_values",
            c,
            pl.col(f"__n_{c}") > 1,
            f"the {spec.csv_file} rows of this {spec.key} give different {c} values; Eightfold takes one "
            "per record: keep one value",
        )
        for c in single
    ]
    _, quarantine = _split_by_rules(flagged, checks)
    return quarantine


def _split_by_rules(
    frame: pl.DataFrame, checks: list[tuple[str, str, pl.Expr, str]]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows passing every check, quarantine rows `_row, _rule, _column, _message` with every failure)."""
    if not checks:
        return frame, pl.DataFrame(schema=_QUARANTINE_SCHEMA)
    flags = [fails.fill_null(False).alias(f"__c{i}") for i, (_, _, fails, _) in enumerate(checks)]
    work = frame.with_columns(flags)
    bad = pl.any_horizontal([pl.col(f"__c{i}") for i in range(len(checks))])

    def joined(part: int) -> pl.Expr:
        return pl.concat_str(
            [pl.when(pl.col(f"__c{i}")).then(pl.lit(c[part])) for i, c in enumerate(checks)],
            separator=SEPARATOR,
            ignore_nulls=True,
        )

    quarantine = work.filter(bad).select(
        pl.col(ROW), joined(0).alias("_rule"), joined(1).alias("_column"), joined(3).alias("_message")
    )
    return work.filter(~bad).select(frame.columns), quarantine


def _list_of(column: str) -> pl.Expr:
    """A comma-separated cell → its trimmed, non-blank items."""
    return (
        pl.col(column)
        .str.split(",")
        .list.eval(pl.element().str.strip_chars().filter(pl.element().str.strip_chars() != ""))
    )


def aggregate(rows: pl.DataFrame, spec: CompanionSpec, columns: list[str] | None = None) -> pl.DataFrame:
    """Valid companion rows → one row per key: `(<key>, <csv_file>: list[struct])`, items in row order.

    items: row gives one struct per row (a field with xml_repeat holds the items of its comma-separated
    cell; an `each` field's cell gives one struct per item); items: key gives one struct per key whose list
    fields hold the distinct values of all its rows (split on commas when `split`) and whose single fields
    hold their one value; items: column gives one struct per column of the sheet (`columns`) holding a
    value for the key: its header and the distinct values.

    >>> aggregate(pl.DataFrame({"_row": [2, 3], "EXTERNAL_ID": ["r1", "r1"], "JOB_CODE": ["a", "b"]}),
    ...           load_schema("role").companion("ROLE-ASSOCIATED-TAGS"))  # doctest: +SKIP
    """
    ordered = rows.sort(ROW)
    if spec.items == "column":
        if columns is None:  # the sheet's own columns: all but the key
            columns = [c for c in rows.columns if c not in (ROW, spec.key)]
        return _aggregate_columns(ordered, spec, columns)
    names = spec.columns
    if spec.items == "key":
        split = {f.name for f in spec.fields if f.name and f.split}
        listed = [f.name for f in spec.fields if f.is_list]
        values = [_list_of(c).alias(c) if c in split else pl.concat_list(pl.col(c)).alias(c) for c in listed]
        per_key = (
            ordered.with_columns(values)
            .group_by(spec.key, maintain_order=True)
            .agg(
                [pl.col(c).explode().drop_nulls().unique(maintain_order=True) for c in listed]
                + [pl.col(c).drop_nulls().first() for c in spec.single]
            )
        )
        return per_key.select(pl.col(spec.key), pl.concat_list(pl.struct(names)).alias(spec.csv_file))
    repeated = {f.name for f in spec.fields if f.name and f.xml_repeat}
    each = [f.name for f in spec.fields if f.name and f.each]
    values = [_list_of(c).alias(c) if c in repeated or c in each else pl.col(c) for c in names]
    frame = ordered.with_columns(values)
    if each:  # one item per value of the cell; a row whose cell holds no item gives none
        frame = frame.explode(each, empty_as_null=False, keep_nulls=False)
    return frame.group_by(spec.key, maintain_order=True).agg(pl.struct(names).alias(spec.csv_file))


def _aggregate_columns(ordered: pl.DataFrame, spec: CompanionSpec, columns: list[str]) -> pl.DataFrame:
    """items: column: the sheet unpivoted to (key, header, value), then one struct per key and header with
    the header's distinct values, in column order."""
    [header] = [f.name for f in spec.fields if f.header]
    [cell] = [f.name for f in spec.fields if f.name and not f.header]
    item = pl.Struct({header: pl.String, cell: pl.List(pl.String)})
    empty = pl.DataFrame(schema={spec.key: pl.String, spec.csv_file: pl.List(item)})
    if not columns or ordered.height == 0:
        return empty
    # Internal names while long: a sheet may name a column like the item's own fields (TAG_NAME).
    long = (
        ordered.select(pl.col(spec.key).alias(KEY), *columns)
        .unpivot(on=columns, index=[KEY], variable_name="__header", value_name="__cell")
        .drop_nulls("__cell")
        .group_by(KEY, "__header", maintain_order=True)
        .agg(pl.col("__cell").unique(maintain_order=True))
    )
    order = {c: i for i, c in enumerate(columns)}
    long = long.with_columns(pl.col("__header").replace_strict(order, return_dtype=pl.Int64).alias("__pos"))
    return (
        long.sort("__pos", maintain_order=True)
        .group_by(KEY, maintain_order=True)
        .agg(pl.struct(pl.col("__header").alias(header), pl.col("__cell").alias(cell)).alias(spec.csv_file))
        .rename({KEY: spec.key})
    )


# -- XML-only values ---------------------------------------------------------------------------------------
def tenant_parameters(tenant: str | None, settings: Settings | None = None) -> dict[str, Any]:
    """The tenant's `parameters` (config/tenants/<tenant>.yaml), empty without a tenant."""
    if not tenant:
        return {}
    from snapmap_pipeline.core.mapping import load_overrides

    return dict(load_overrides(tenant, settings).parameters)


def sql_params(schema: EntitySchema, tenant: str | None, settings: Settings | None = None) -> dict[str, Any]:
    """Named parameters for the entity's SQL model: the schema's defaults, then the tenant's values."""
    return {"tenant": tenant or "", **schema.sql_params(), **tenant_parameters(tenant, settings)}


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def fill_xml_values(
    frame: pl.DataFrame, schema: EntitySchema, params: Mapping[str, Any]
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Add the schema's XML-only value columns to the transformed frame: what the SQL model made, else the
    tenant parameter (`param`), else its default. Returns the frame and the count filled per value."""
    derived: dict[str, int] = {}
    exprs = []
    for v in schema.xml_values:
        current = pl.col(v.name).cast(pl.String) if v.name in frame.columns else pl.lit(None, pl.String)
        value = _text(params.get(v.param, v.default)) if v.param else None
        exprs.append(pl.coalesce(current, pl.lit(value, pl.String)).alias(v.name))
    if not exprs:
        return frame, derived
    out = frame.with_columns(exprs)
    counts = out.select([pl.col(v.name).is_not_null().sum() for v in schema.xml_values]).row(0)
    for v, n in zip(schema.xml_values, counts, strict=True):
        if n:
            derived[v.name] = int(n)
    return out, derived


def _xml_value_checks(
    schema: EntitySchema, operation: str, tenant: str | None
) -> list[tuple[str, str, pl.Expr, str]]:
    form = "update" if operation == "upsert" else operation
    checks: list[tuple[str, str, pl.Expr, str]] = []
    for v in schema.xml_values_for(operation):
        col = pl.col(v.name)
        if form in v.required_for:
            if v.param:
                where = (
                    f"config/tenants/{tenant}.yaml"
                    if tenant
                    else "config/tenants/<tenant>.yaml (and pass --tenant)"
                )
                rule = "missing_tenant_value"
                message = (
                    f"{v.name} ({v.xml}) is required by Eightfold's {operation} XSD and no source column "
                    f"carries it: set `parameters: {{{v.param}: ...}}` in {where}"
                )
            else:
                rule = "required"
                message = f"{v.name} ({v.xml}) is required by Eightfold's {operation} XSD and is blank"
            checks.append((rule, v.name, col.is_null(), message))
        if v.type == "boolean":
            bad = ~col.str.to_lowercase().is_in(list(_booleans()))
            checks.append(("boolean", v.name, bad, f"{v.name} is not true/false ({v.description})"))
        elif v.type == "integer":
            checks.append(
                ("integer", v.name, ~col.str.contains(r"^[+-]?\d+$"), f"{v.name} is not a whole number")
            )
        if v.no_whitespace:
            checks.append(
                ("no_whitespace", v.name, col.str.contains(r"\s"), f"{v.name} must not contain spaces")
            )
        if v.max_length:
            checks.append(("max_length", v.name, col.str.len_chars() > v.max_length, f"{v.name} is too long"))
    return checks


# -- completing the records --------------------------------------------------------------------------------
@dataclass
class SheetReport:
    """One companion sheet's accounting: rows in = attached + quarantined."""

    sheet: str
    file: str
    rows_in: int
    attached: int
    quarantined: int
    records: int  # MAIN records that got at least one item
    rules: dict[str, int] = field(default_factory=dict)
    unmapped_columns: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class CompanionReport:
    """What `complete_records` did: per sheet, the MAIN rows it moved to quarantine, the values it filled."""

    sheets: dict[str, SheetReport] = field(default_factory=dict)
    quarantines: dict[str, pl.DataFrame] = field(default_factory=dict)  # sheet → source cols + _row, _rule...
    attached: dict[str, pl.DataFrame] = field(default_factory=dict)  # sheet → valid rows (key + columns)
    main_quarantined: dict[str, int] = field(default_factory=dict)  # rule → MAIN rows moved to quarantine
    derived: dict[str, int] = field(default_factory=dict)
    issues: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sheets": {k: v.to_dict() for k, v in self.sheets.items()},
            "main_quarantined": dict(self.main_quarantined),
            "derived": dict(self.derived),
        }


def _rule_counts(q: pl.DataFrame) -> dict[str, int]:
    if q.height == 0:
        return {}
    counts = q.select(pl.col("_rule").str.split(SEPARATOR).explode().value_counts()).unnest("_rule")
    return {str(r): int(n) for r, n in counts.iter_rows()}


def _rule_columns(q: pl.DataFrame) -> dict[str, str]:
    """rule → the column it failed on (the first seen), from joined `_rule` / `_column` cells."""
    pairs = q.select(pl.col("_rule").str.split(SEPARATOR), pl.col("_column").str.split(SEPARATOR)).explode(
        "_rule", "_column"
    )
    return dict(pairs.unique(subset=["_rule"], keep="first", maintain_order=True).iter_rows())


def attach_companions(
    valid: pl.DataFrame,
    schema: EntitySchema,
    operation: str,
    inputs: list[CompanionInput],
    *,
    all_keys: pl.Series | None = None,
    report: CompanionReport | None = None,
) -> tuple[pl.DataFrame, CompanionReport]:
    """Validate each companion sheet, aggregate it per key and join it onto the valid MAIN frame.

    A companion row whose key matches no valid MAIN record is quarantined: `orphan_companion` when no MAIN
    row has that key (`all_keys`: every key read, valid or not), `main_quarantined` when its record was
    quarantined. Rows in = attached + quarantined, per sheet.
    """
    report = report or CompanionReport()
    carried = {c.csv_file for c in schema.companions_for(operation)}
    known_keys = pl.DataFrame(
        {KEY: (all_keys if all_keys is not None else valid[schema.key]).cast(pl.String)}
    )
    for inp in inputs:  # a loop over sheets
        spec = inp.spec
        if spec.csv_file not in carried:
            report.issues.append(
                {
                    "level": "warning",
                    "rule": "companion_not_used",
                    "column": spec.csv_file,
                    "message": f"{spec.csv_file} is not part of the {operation} feed; "
                    f"'{inp.filename}' was not used",
                }
            )
            continue
        columns = inp.columns if inp.columns or spec.items == "column" else spec.columns
        mapped = inp.mapped.with_columns(_normalised(spec, columns))
        ok, bad = _split_by_rules(mapped, _field_checks(spec, columns))
        conflicting = _conflicts(ok, spec)
        ok = ok.join(conflicting.select(ROW), on=ROW, how="anti")
        main_keys = valid.select(pl.col(schema.key).cast(pl.String).alias(spec.key)).unique()
        matched = ok.join(main_keys, on=spec.key, how="semi")
        unmatched = ok.join(main_keys, on=spec.key, how="anti")
        quarantined_main = unmatched.join(
            known_keys.rename({KEY: spec.key}).unique(), on=spec.key, how="semi"
        )
        orphan = unmatched.join(known_keys.rename({KEY: spec.key}).unique(), on=spec.key, how="anti")
        q_parts = [
            bad,
            conflicting,
            orphan.select(
                ROW,
                pl.lit("orphan_companion").alias("_rule"),
                pl.lit(spec.key).alias("_column"),
                pl.lit(
                    f"{spec.key} matches no record in {schema.csv_file}: add the record or fix the id"
                ).alias("_message"),
            ),
            quarantined_main.select(
                ROW,
                pl.lit("main_quarantined").alias("_rule"),
                pl.lit(spec.key).alias("_column"),
                pl.lit(f"the {schema.csv_file} record of this {spec.key} is quarantined; fix it there").alias(
                    "_message"
                ),
            ),
        ]
        quarantine = pl.concat(q_parts, how="vertical").sort(ROW)
        items = aggregate(matched, spec, columns)
        valid = valid.join(
            items.rename({spec.key: "__ckey"}),
            left_on=pl.col(schema.key).cast(pl.String),
            right_on="__ckey",
            how="left",
            maintain_order="left",
        )
        if "__ckey" in valid.columns:
            valid = valid.drop("__ckey")
        source_cols = [c for c in inp.source.columns if c != ROW and c not in QUARANTINE_COLUMNS]
        report.quarantines[spec.csv_file] = quarantine.join(inp.source, on=ROW, how="left").select(
            *source_cols, ROW, *QUARANTINE_COLUMNS
        )
        report.attached[spec.csv_file] = matched.sort(ROW).select(spec.key, *columns)
        report.sheets[spec.csv_file] = SheetReport(
            sheet=spec.csv_file,
            file=inp.filename,
            rows_in=inp.mapped.height,
            attached=matched.height,
            quarantined=quarantine.height,
            records=items.height,
            rules=_rule_counts(quarantine),
            unmapped_columns=inp.unmapped,
        )
        if inp.unmapped:
            report.issues.append(
                {
                    "level": "warning",
                    "rule": "companion_unmapped",
                    "column": spec.csv_file,
                    "message": f"{spec.csv_file}: columns not used: {', '.join(inp.unmapped)}",
                }
            )
        if matched.height + quarantine.height != inp.mapped.height:  # pragma: no cover - a bug, not input
            raise InputError("row conservation broken in a companion sheet", code="row_conservation")
    return valid, report


def _companion_checks(schema: EntitySchema, operation: str, columns: list[str]) -> list[_CheckT]:
    form = "update" if operation == "upsert" else operation
    checks: list[_CheckT] = []
    for c in schema.companions_for(operation):
        if form not in c.required_for:
            continue
        present = pl.col(c.csv_file).list.len().fill_null(0) > 0 if c.csv_file in columns else pl.lit(False)
        checks.append(
            (
                "missing_companion",
                c.csv_file,
                ~present,
                f"Eightfold's {operation} XSD needs at least one {c.element} from {c.csv_file} for this "
                f"record; give {c.csv_file}.csv (with --companion, or as a sheet of the workbook) with a "
                f"row for its {c.key}",
            )
        )
    return checks


def record_failures(
    valid: pl.DataFrame,
    schema: EntitySchema,
    operation: str,
    *,
    tenant: str | None = None,
    values: bool = True,
    companions: bool = True,
) -> pl.DataFrame:
    """MAIN rows the XSD would still refuse: an XML-only value missing or malformed (`values`), or a
    required companion group without items (`companions`; rule `missing_companion`, naming the sheet).

    Returns `_row, _rule, _column, _message`, every failure of a row joined with "; "."""
    checks = _xml_value_checks(schema, operation, tenant) if values else []
    if companions:
        checks += _companion_checks(schema, operation, valid.columns)
    if not checks:
        return pl.DataFrame(schema=_QUARANTINE_SCHEMA)
    names = [v.name for v in schema.xml_values_for(operation)]
    frame = valid.with_columns([pl.lit(None, pl.String).alias(n) for n in names if n not in valid.columns])
    _, quarantine = _split_by_rules(frame, checks)
    return quarantine


def complete_records(
    result: Any,
    transformed: pl.DataFrame,
    schema: EntitySchema,
    operation: str,
    *,
    inputs: list[CompanionInput] | None = None,
    tenant: str | None = None,
) -> CompanionReport:
    """After MAIN validation: bring back the XML-only values, attach the companion groups, and move MAIN
    rows the XSD would still refuse from `result.valid` to `result.quarantine` (counts kept in step).

    `result` is the `validate` ValidationResult (changed in place); `transformed` the frame validated.
    """
    report = CompanionReport()
    valid = result.valid
    extra = [v.name for v in schema.xml_values_for(operation) if v.name in transformed.columns]
    if extra:
        values = transformed.select(
            pl.col(ROW).cast(pl.Int64), *[pl.col(n).cast(pl.String).str.strip_chars() for n in extra]
        )
        valid = valid.join(values, on=ROW, how="left", maintain_order="left").with_columns(
            [pl.when(pl.col(n) != "").then(pl.col(n)).alias(n) for n in extra]
        )
    # Values first: a record they quarantine takes its companion rows with it (`main_quarantined`).
    failures = record_failures(valid, schema, operation, tenant=tenant, companions=False)
    if failures.height:  # an anti join copies the whole frame even when it removes nothing
        valid = valid.join(failures.select(ROW), on=ROW, how="anti")
    if inputs:
        all_keys = transformed[schema.key] if schema.key in transformed.columns else None
        valid, report = attach_companions(valid, schema, operation, inputs, all_keys=all_keys, report=report)
    missing = record_failures(valid, schema, operation, tenant=tenant, values=False)
    failures = pl.concat([failures, missing], how="vertical")
    if failures.height:
        valid = valid.join(failures.select(ROW), on=ROW, how="anti")
        result.quarantine = pl.concat(
            [result.quarantine.select(list(_QUARANTINE_SCHEMA)), failures], how="vertical"
        ).sort(ROW)
        columns = _rule_columns(failures)
        for rule, n in _rule_counts(failures).items():
            report.main_quarantined[rule] = n
            result.rule_counts[rule] = result.rule_counts.get(rule, 0) + n
            result.issues.append({"level": "error", "rule": rule, "column": columns.get(rule), "count": n})
    booleans = [v.name for v in schema.xml_values_for(operation) if v.type == "boolean" and v.name in extra]
    if booleans:  # the checks above accepted any yes/no spelling; the XML gets true/false
        valid = valid.with_columns(
            [
                pl.col(n).str.to_lowercase().replace_strict(_booleans(), default=None, return_dtype=pl.String)
                for n in booleans
            ]
        )
    result.issues.extend(report.issues)
    result.valid = valid
    result.rows_valid = valid.height
    result.rows_quarantined = result.quarantine.height
    if result.rows_valid + result.rows_quarantined != result.rows_in:  # pragma: no cover - a bug
        raise InputError("row conservation broken while completing records", code="row_conservation")
    return report


def companion_columns(schema: EntitySchema, frame: pl.DataFrame) -> list[str]:
    """The attached companion columns of a frame (list-of-struct; not for CSV or the quality suite)."""
    return [c.csv_file for c in schema.companions if c.csv_file in frame.columns]


def main_only(schema: EntitySchema, frame: pl.DataFrame) -> pl.DataFrame:
    """The frame without its companion columns: what the MAIN CSV and the quality suite see.

    The same frame when it has none: a `drop` runs a query over the frame, and over a frame whose columns
    are chunked differently (validation's output is) that first copies every column (+330 MB at 1M rows).
    """
    extra = companion_columns(schema, frame)
    return frame.drop(extra) if extra else frame


def write_companion_outputs(report: CompanionReport, out_dir: Path) -> dict[str, Any]:
    """Per sheet: the Eightfold CSV of the attached rows (`<SHEET>.csv`, spec columns) and its quarantine
    (`quarantine-<SHEET>.csv`, formula-guarded like the MAIN one). Returns the paths written."""
    from snapmap_pipeline.core.export.csv import write_quarantine_csv

    out: dict[str, Any] = {"csv_files": [], "quarantines": {}}
    for sheet, rows in report.attached.items():
        path = out_dir / f"{sheet}.csv"
        rows.write_csv(path)
        out["csv_files"].append(str(path))
    for sheet, q in report.quarantines.items():
        path = out_dir / f"quarantine-{sheet}.csv"
        write_quarantine_csv(q, path)
        out["quarantines"][sheet] = str(path)
    return out


# -- drops: companion files beside a MAIN file -------------------------------------------------------
def is_companion_file(name: str, schemas: Mapping[str, EntitySchema] | None = None) -> bool:
    """A dropped file named like a companion sheet of any entity: it rides with the MAIN file of its folder
    instead of being processed on its own."""
    from snapmap_pipeline.core.schema import load_all

    return any(companion_for_name(s, name) is not None for s in (schemas or load_all()).values())


def sibling_companion_names(path: str, schemas: Mapping[str, EntitySchema] | None = None) -> list[str]:
    """The names a companion of any entity would have beside `path` (same folder, the sheet name + .csv,
    as Eightfold's own file layout names them), for a source to look up one by one."""
    from snapmap_pipeline.core.schema import load_all

    folder = path.replace("\\", "/").rpartition("/")[0]
    prefix = f"{folder}/" if folder else ""
    sheets = sorted({c.csv_file for s in (schemas or load_all()).values() for c in s.companions})
    return [f"{prefix}{sheet}.csv" for sheet in sheets]
