"""Validation: normalise dates, booleans and numbers to Eightfold's text forms, then split valid rows from
quarantined rows with every failed rule; and the pandera contract the valid frame must pass.

Vectorised with polars; rows in = rows valid + rows quarantined, always. No Dagster imports here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import yaml

from snapmap_pipeline import yamlfile
from snapmap_pipeline.core.dates import normalise_dates
from snapmap_pipeline.core.schema import EntitySchema, FieldSpec
from snapmap_pipeline.core.transform import untrimmed_columns
from snapmap_pipeline.errors import ConfigError, SnapMapError
from snapmap_pipeline.logs import get_logger
from snapmap_pipeline.settings import Settings, get_settings

if TYPE_CHECKING:
    import pandera.polars as pa

log = get_logger(__name__)

ROW = "_row"
QUARANTINE_COLUMNS = ("_rule", "_column", "_message")
RULE_SEPARATOR = "; "

# Valid-frame forms (what the contract checks and what validate writes).
DATE_RE = r"^\d{4}-\d{2}-\d{2}$"
DATETIME_RE = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$"
BOOLEAN_RE = r"^(?:true|false)$"
INTEGER_RE = r"^-?\d+$"
FLOAT_RE = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$"  # xs:float, finite values only
NO_WHITESPACE_RE = r"^\S+$"
EMAIL_SHAPE_RE = r"^[^@\s]+@[^@\s]+$"
# Fast path for email syntax: what this accepts, email-validator accepts too (dot-atom local part, ASCII
# LDH domain, alphabetic TLD). Anything else goes to email-validator itself.
_EMAIL_FAST_RE = (
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)
# What each item of a typed list must look like (custom EFCUSTOMLIST_* columns, float lists).
_ITEM_FORMS = {
    "integer": INTEGER_RE,
    "float": FLOAT_RE,
    "date": DATE_RE,
    "datetime": DATETIME_RE,
    "boolean": BOOLEAN_RE,
    "email": EMAIL_SHAPE_RE,
}
_INTEGER_IN_RE = r"^[+-]?\d+(\.0+)?$"

DEFAULT_BOOLEANS = {
    "true": ("true", "t", "yes", "y", "1"),
    "false": ("false", "f", "no", "n", "0"),
}


# -- configuration --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ValidationConfig:
    """`config/validation.yaml`: per-entity checks that are data, not code."""

    company_email_fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    reference_checks: dict[str, dict[str, str]] = field(default_factory=dict)
    booleans: dict[str, str] = field(default_factory=dict)  # spelling → "true" | "false"


@lru_cache(maxsize=8)
def _load_config(path: Path, mtime: float) -> ValidationConfig:
    try:
        raw = yamlfile.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path.name}: cannot read: {exc}; fix the YAML", path=str(path)) from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path.name}: expected a mapping", path=str(path))
    company = {str(e): tuple(v or ()) for e, v in (raw.get("company_email_fields") or {}).items()}
    refs = {
        str(e): {str(k): str(t) for k, t in (v or {}).items()}
        for e, v in (raw.get("reference_checks") or {}).items()
    }
    spellings = raw.get("boolean_values") or DEFAULT_BOOLEANS
    booleans: dict[str, str] = {}
    for target in ("true", "false"):
        for s in spellings.get(target, spellings.get(target == "true", ())):
            booleans[str(s).strip().lower()] = target
    return ValidationConfig(company, refs, booleans)


def validation_config(settings: Settings) -> ValidationConfig:
    """The validation data file, or the defaults (booleans only) when it is absent."""
    path = settings.config_dir / "validation.yaml"
    if not path.is_file():
        return ValidationConfig(booleans={s: t for t, ss in DEFAULT_BOOLEANS.items() for s in ss})
    return _load_config(path, path.stat().st_mtime)


# -- result ---------------------------------------------------------------------------------------------
@dataclass
class ValidationResult:
    """Valid rows (Eightfold text forms), quarantined rows (one per source row, every failed rule)."""

    valid: pl.DataFrame
    quarantine: pl.DataFrame
    issues: list[dict[str, Any]]
    rows_in: int
    rows_valid: int
    rows_quarantined: int
    date_orders: dict[str, str]
    rule_counts: dict[str, int] = field(default_factory=dict)
    # Only when `validate(seen=...)` is given: per unique column, the values this frame kept first
    # (columns: the field, `_kept`), to add to `seen` for the next batch of a streamed file.
    kept: dict[str, pl.DataFrame] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "rows_valid": self.rows_valid,
            "rows_quarantined": self.rows_quarantined,
            "rule_counts": dict(self.rule_counts),
            "date_orders": dict(self.date_orders),
            "issues": list(self.issues),
        }


@dataclass
class _Check:
    rule: str
    column: str
    fails: pl.Expr  # True where the row fails
    message: pl.Expr  # per-row text (a literal for most rules)


# -- helpers --------------------------------------------------------------------------------------------
def _checked_fields(frame: pl.DataFrame, schema: EntitySchema, operation: str) -> list[FieldSpec]:
    """The operation's fields present in the frame or required by it, plus custom columns present."""
    required = set(schema.required_for(operation, "xml"))
    specs = [f for f in schema.fields_for(operation) if f.name in frame.columns or f.name in required]
    if schema.operation(operation).fields is None and schema.custom_fields:
        known = {f.name for f in specs}
        for c in frame.columns:
            if c not in known and c != ROW and schema.has_field(c) and c not in schema.field_names:
                specs.append(schema.field(c))
    return specs


def _email_valid(series: pl.Series) -> pl.Series:
    """Email syntax per email-validator, vectorised: a strict regex passes most values; the rest are
    checked by email-validator once per unique value."""
    from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

    special = "|".join(re.escape(d) for d in SPECIAL_USE_DOMAIN_NAMES)
    fast = (
        series.str.contains(_EMAIL_FAST_RE)
        & (series.str.len_bytes() <= 254)
        & (series.str.find("@", literal=True) <= 64)  # ASCII once the regex passed: chars == bytes
        & ~series.str.contains(rf"\.({special})$")
    ).fill_null(False)
    # Without exactly one "@" and with whitespace, email-validator (no quoted local parts) always refuses.
    # Checked only on the few values the fast path did not pass, not on the whole column.
    undecided = series.filter(~fast & series.is_not_null()).unique()
    slow_values = undecided.filter(undecided.str.contains(EMAIL_SHAPE_RE))
    ok: dict[str, bool] = {}
    # A Python loop over the unique values the regex cannot decide (internationalised or odd addresses):
    # email-validator has no vectorised API, and these are few.
    for value in slow_values.to_list():
        try:
            validate_email(value, check_deliverability=False)
            ok[value] = True
        except EmailNotValidError:
            ok[value] = False
    slow_ok = (
        series.replace_strict(ok, default=False, return_dtype=pl.Boolean)
        if ok
        else pl.repeat(False, len(series), eager=True)
    )
    return (fast | slow_ok).fill_null(True) | series.is_null()


def _first_row_among(key: pl.Expr, eligible: pl.Expr) -> pl.Expr:
    """For each row, the `_row` of the first eligible row with the same key (null if none)."""
    return pl.when(eligible).then(pl.col(ROW)).min().over(key)


# -- validate -------------------------------------------------------------------------------------------
def validate(
    frame: pl.DataFrame,
    schema: EntitySchema,
    operation: str = "ingest",
    *,
    settings: Settings | None = None,
    date_order: str | None = None,
    known_ids: set | None = None,
    date_evidence: dict[str, dict[str, bool]] | None = None,
    seen: dict[str, pl.DataFrame] | None = None,
    clean: bool = False,
) -> ValidationResult:
    """Normalise the transformed frame and split valid rows from quarantined ones.

    Every rule is checked on every row; a quarantined row lists all its failures, joined with "; " in
    `_rule`, `_column` and `_message` in the same order. Among rows that pass every other rule, the first
    per key (and per company email) is kept and later ones are quarantined naming the kept `_row`.
    `known_ids` adds keys known from elsewhere (e.g. yesterday's snapshot) to the reference checks.

    For one batch of a larger file (core/stream.py): `date_evidence` (per date field, merged
    `dates.date_evidence` of the whole file) decides day/month order as for the whole file; `seen` (per
    unique column: the values kept by earlier batches, columns `<field>, _kept`) makes a repeat of an
    earlier batch's kept value a duplicate naming that row, and `result.kept` returns this batch's.

    `clean=True` says the frame comes from `transform` (text trimmed, blanks null in every column, emails
    lower-cased), so the trim and the lower-casing, each a copy of the column, are not done twice.
    """
    settings = settings or get_settings()
    config = validation_config(settings)
    if ROW not in frame.columns:
        raise SnapMapError("the frame has no _row column; run transform first", code="missing_row_column")
    order_setting = date_order or settings.date_order
    if order_setting is not None and order_setting not in ("dmy", "mdy"):
        raise ConfigError(
            f"date_order must be 'dmy' or 'mdy', not {order_setting!r}; fix the tenant settings",
            code="bad_date_order",
        )

    specs = _checked_fields(frame, schema, operation)
    required = set(schema.required_for(operation, "xml"))
    rows_in = frame.height
    names = [f.name for f in specs]
    # Two passes (strip, then blank → null) are faster than one: the strip is not computed twice. Only
    # the columns that need it are stripped (a strip copies the text).
    untrimmed = set() if clean else set(untrimmed_columns(frame, names))
    work = frame.select(
        pl.col(ROW).cast(pl.Int64),
        *[
            (pl.col(n).cast(pl.String).str.strip_chars() if n in untrimmed else pl.col(n).cast(pl.String))
            if n in frame.columns
            else pl.lit(None, pl.String).alias(n)
            for n in names
        ],
    )
    if not clean:
        work = work.with_columns([pl.when(pl.col(n) != "").then(pl.col(n)).alias(n) for n in names])

    checks: list[_Check] = []
    issues: list[dict[str, Any]] = []
    date_orders: dict[str, str] = {}
    replacements: list[pl.Expr | pl.Series] = []
    extra_fails: dict[str, pl.Series] = {}

    def lit_check(rule: str, column: str, fails: pl.Expr, message: str) -> None:
        # "; " separates failures in the quarantine columns, so a message never contains it.
        checks.append(
            _Check(rule, column, fails.fill_null(False), pl.lit(message.replace(RULE_SEPARATOR, ", ")))
        )

    def series_check(rule: str, column: str, fails: pl.Series, message: str) -> None:
        key = f"__{rule}__{column}"
        extra_fails[key] = fails.alias(key)
        lit_check(rule, column, pl.col(key), message)

    booleans = config.booleans
    for spec in specs:
        name = spec.name
        col = pl.col(name)
        if name in required:
            lit_check(
                "required",
                name,
                col.is_null(),
                f"{name} is required for {operation} and is blank: "
                "fill it in the source or map a column to it",
            )
        kind = spec.type
        if kind in ("date", "datetime"):
            res = normalise_dates(
                work[name],
                kind,
                date_order=order_setting,
                evidence=(date_evidence or {}).get(name),
            )
            replacements.append(res.values)
            date_orders[name] = res.order
            example = "2024-03-05" if kind == "date" else "2024-03-05T14:30:00"
            series_check(
                "date", name, res.invalid, f"{name} is not a real {kind} in a known form (e.g. {example})"
            )
            series_check(
                "ambiguous_date",
                name,
                res.ambiguous,
                f"{name}: day and month could be swapped and no value in the column shows the order, "
                "set the tenant's date_order (dmy or mdy)",
            )
            if res.order not in ("iso", "empty"):
                issues.append(
                    {
                        "level": "info",
                        "rule": "date_order",
                        "column": name,
                        "order": res.order,
                        "source": res.order_source,
                    }
                )
            if res.order == "conflict":
                issues.append(
                    {
                        "level": "warning",
                        "rule": "date_order",
                        "column": name,
                        "message": f"{name} has both day-first and month-first dates; "
                        "only values that decide themselves were read",
                    }
                )
            elif order_setting and res.order_source == "evidence" and res.order != order_setting:
                issues.append(
                    {
                        "level": "warning",
                        "rule": "date_order",
                        "column": name,
                        "message": f"{name} reads as {res.order} from its values, not the configured "
                        f"{order_setting}; the values decided",
                    }
                )
        elif kind == "boolean":
            mapped = col.str.to_lowercase().replace_strict(booleans, default=None, return_dtype=pl.String)
            lit_check(
                "boolean",
                name,
                col.is_not_null() & mapped.is_null(),
                f"{name} is not a yes/no value (true/false, yes/no, y/n, 1/0)",
            )
            replacements.append(mapped.alias(name))
        elif kind == "integer":
            as_int = col.str.replace(r"\.0+$", "").str.strip_prefix("+").cast(pl.Int64, strict=False)
            ok = col.str.contains(_INTEGER_IN_RE) & as_int.is_not_null()
            lit_check("integer", name, col.is_not_null() & ~ok, f"{name} is not a whole number")
            replacements.append(pl.when(ok).then(as_int.cast(pl.String)).otherwise(col).alias(name))
        elif kind == "float":
            lit_check(
                "float", name, ~col.str.contains(FLOAT_RE), f"{name} is not a number (use a dot for decimals)"
            )
        elif kind == "email" and not clean:  # transform lower-cased them already
            replacements.append(col.str.to_lowercase().alias(name))
        elif kind == "enum" and spec.values:
            allowed = ", ".join(spec.values)
            lit_check(
                "enum",
                name,
                ~col.is_in(spec.values),
                f"{name} is not one of: {allowed} (fix the value or add a spelling "
                "to config/enum_synonyms.yaml)",
            )
        if kind == "list" and spec.item_type in _ITEM_FORMS:
            # Items are checked, not rewritten: each must already be in its Eightfold form.
            form = _ITEM_FORMS[spec.item_type]
            bad_item = col.str.split(",").list.eval(~pl.element().str.contains(form)).list.any()
            lit_check(
                "list_item",
                name,
                bad_item,
                f"{name} has an item that is not a {spec.item_type} in Eightfold's form (pattern {form})",
            )
        if spec.max_length:
            n = spec.max_length
            if kind == "list":  # the limit is per item
                too_long = col.str.split(",").list.eval(pl.element().str.len_chars()).list.max() > n
            else:
                too_long = col.str.len_chars() > n
            lit_check("max_length", name, too_long, f"{name} is longer than {n} characters")
        if spec.no_whitespace:
            lit_check("no_whitespace", name, col.str.contains(r"\s"), f"{name} must not contain whitespace")

    # Replace normalised columns (expressions first, then the date series).
    expr_repl = [r for r in replacements if isinstance(r, pl.Expr)]
    series_repl = [r for r in replacements if isinstance(r, pl.Series)]
    # Checks above read the pre-normalised values (booleans, integers); emails are checked after.
    fail_exprs = [c.fails.alias(f"__f{i}") for i, c in enumerate(checks)]
    work = work.with_columns(*extra_fails.values()).with_columns(fail_exprs)
    work = work.with_columns(*expr_repl, *series_repl)

    email_fields = [s.name for s in specs if s.type == "email"]
    for name in email_fields:
        ok = _email_valid(work[name])
        key = f"__email__{name}"
        work = work.with_columns(pl.Series(key, ~ok))
        idx = len(checks)
        checks.append(_Check("email", name, pl.col(key), pl.lit(f"{name} is not a valid email address")))
        work = work.with_columns(pl.col(key).alias(f"__f{idx}"))
    company = [n for n in config.company_email_fields.get(schema.entity, ()) if n in names]
    webmail = sorted(settings.webmail)
    on_webmail = rf"@(?:{'|'.join(re.escape(d) for d in webmail)})$" if webmail else None
    for name in company:
        idx = len(checks)
        checks.append(
            _Check(
                "company_email",
                name,
                pl.col(name).str.contains(on_webmail).fill_null(False) if on_webmail else pl.lit(False),
                pl.lit(f"{name} is on a webmail domain, Eightfold needs the company address"),
            )
        )
        work = work.with_columns(checks[idx].fails.alias(f"__f{idx}"))

    # Uniqueness among rows that pass everything else: the first is kept, the rest name it.
    n_plain = len(checks)
    passes = ~pl.any_horizontal([pl.col(f"__f{i}") for i in range(n_plain)]) if n_plain else pl.lit(True)
    unique_cols = [("duplicate_key", schema.key)] if schema.key in names else []
    unique_cols += [("duplicate_email", n) for n in company]
    kept: dict[str, pl.DataFrame] = {}
    for rule, name in unique_cols:
        # Only rows whose value repeats can be duplicates: find them on that subset, then flag by `_row`.
        idx = len(checks)
        flag, text = f"__f{idx}", f"__m{idx}"
        what = "key" if rule == "duplicate_key" else "email"
        message = pl.format(f"{name} is a duplicate {what}, row {{}} was kept", "__kept").alias(text)
        if seen is None:
            dups = (
                work.lazy()
                .filter(pl.col(name).is_not_null() & (pl.len().over(name) > 1))
                .select(ROW, name, passes.alias("__passes"))
                .with_columns(_first_row_among(pl.col(name), pl.col("__passes")).alias("__kept"))
                .filter(pl.col("__kept").is_not_null() & (pl.col("__kept") != pl.col(ROW)))
                .select(ROW, message)
                .collect()
            )
        else:
            dups, kept[name] = _duplicates_across(work, name, passes, seen.get(name), message)
        if dups.height == 0:
            continue
        work = work.with_columns(
            pl.col(ROW).is_in(dups[ROW].implode()).alias(flag),
            pl.col(ROW)
            .replace_strict(dups[ROW], dups[text], default=None, return_dtype=pl.String)
            .alias(text),
        )
        checks.append(_Check(rule, name, pl.col(flag), pl.col(text)))
        passes = passes & ~pl.col(flag)

    fail_cols = [pl.col(f"__f{i}") for i in range(len(checks))]
    bad = pl.any_horizontal(fail_cols) if checks else pl.lit(False)

    def _joined(part: str) -> pl.Expr:
        pieces = []
        for i, c in enumerate(checks):
            text = pl.lit(c.rule) if part == "rule" else pl.lit(c.column)
            if part == "message":
                text = pl.col(f"__m{i}") if f"__m{i}" in work.columns else c.message
            pieces.append(pl.when(pl.col(f"__f{i}")).then(text))
        return pl.concat_str(pieces, separator=RULE_SEPARATOR, ignore_nulls=True)

    work = work.with_columns(bad.alias("__bad"))
    quarantine = (
        work.filter(pl.col("__bad")).select(
            pl.col(ROW),
            _joined("rule").alias("_rule"),
            _joined("column").alias("_column"),
            _joined("message").alias("_message"),
        )
        if checks
        else pl.DataFrame(
            schema={ROW: pl.Int64, "_rule": pl.String, "_column": pl.String, "_message": pl.String}
        )
    )
    valid = work.lazy().select(ROW, *names, "__bad").filter(~pl.col("__bad")).drop("__bad").collect()

    rule_counts: dict[str, int] = {}
    if checks:
        sums = work.select([pl.col(f"__f{i}").sum() for i in range(len(checks))]).row(0)
        for c, n in zip(checks, sums, strict=True):
            if n:
                rule_counts[c.rule] = rule_counts.get(c.rule, 0) + int(n)
                issues.append({"level": "error", "rule": c.rule, "column": c.column, "count": int(n)})

    issues.extend(_reference_issues(work, schema, config, known_ids))
    result = ValidationResult(
        valid=valid,
        quarantine=quarantine,
        issues=issues,
        rows_in=rows_in,
        rows_valid=valid.height,
        rows_quarantined=quarantine.height,
        date_orders=date_orders,
        rule_counts=rule_counts,
        kept=kept,
    )
    if result.rows_valid + result.rows_quarantined != rows_in:  # pragma: no cover - a bug, not input
        raise SnapMapError("row conservation broken in validation", code="row_conservation")
    log.info(
        "validated",
        extra={
            "fields": {
                "entity": schema.entity,
                "operation": operation,
                "rows_in": rows_in,
                "rows_valid": result.rows_valid,
                "rows_quarantined": result.rows_quarantined,
            }
        },
    )
    return result


def _duplicates_across(
    work: pl.DataFrame, name: str, passes: pl.Expr, prior: pl.DataFrame | None, message: pl.Expr
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Duplicates of one batch given the values kept by earlier batches (`prior`: `name`, `_kept`).

    A value kept earlier keeps that row; otherwise the batch's first passing row keeps it, as for a
    whole file. Returns (duplicate rows with their message, the values this batch kept first).
    """
    prior = (
        prior.select(pl.col(name).cast(pl.String), pl.col("_kept").cast(pl.Int64))
        if prior is not None
        else pl.DataFrame(schema={name: pl.String, "_kept": pl.Int64})
    )
    rows = (
        work.lazy()
        .filter(pl.col(name).is_not_null())
        .select(ROW, name, passes.alias("__passes"))
        .join(prior.lazy().rename({"_kept": "__prior"}), on=name, how="left")
    )
    dups = (
        rows.filter(pl.col("__prior").is_not_null() | (pl.len().over(name) > 1))
        .with_columns(
            pl.coalesce("__prior", _first_row_among(pl.col(name), pl.col("__passes"))).alias("__kept")
        )
        .filter(pl.col("__kept").is_not_null() & (pl.col("__kept") != pl.col(ROW)))
        .select(ROW, message)
        .collect()
    )
    new = (
        rows.filter(pl.col("__passes") & pl.col("__prior").is_null())
        .group_by(name)
        .agg(pl.col(ROW).min().alias("_kept"))
        .collect()
    )
    return dups, new


def _reference_issues(
    work: pl.DataFrame, schema: EntitySchema, config: ValidationConfig, known_ids: Iterable | None
) -> list[dict[str, Any]]:
    """Warnings for references (e.g. MANAGER_ID) that match no key in the file or in `known_ids`."""
    out: list[dict[str, Any]] = []
    for ref, target in config.reference_checks.get(schema.entity, {}).items():
        if ref not in work.columns or target not in work.columns:
            continue
        keys = work[target].drop_nulls()
        if known_ids:
            keys = pl.concat([keys, pl.Series(target, [str(k) for k in known_ids], dtype=pl.String)])
        refs = work.lazy().select(pl.col(ref).alias("k")).drop_nulls()
        unknown = refs.join(pl.LazyFrame({"k": keys}), on="k", how="anti").select(pl.len()).collect().item()
        if unknown:
            out.append(
                {
                    "level": "warning",
                    "rule": "unknown_reference",
                    "column": ref,
                    "count": unknown,
                    "message": f"{unknown} {ref} values match no {target} in the file; "
                    "they are exported as given",
                }
            )
    return out


# -- quarantine with the source ---------------------------------------------------------------------------
def attach_source(source_df: pl.DataFrame, quarantine: pl.DataFrame) -> pl.DataFrame:
    """The original source columns of each quarantined row (by `_row`) plus `_row, _rule, _column, _message`,
    in row order: what quarantine.csv holds."""
    if ROW not in source_df.columns:
        raise SnapMapError(
            "the source frame has no _row column; number rows before reading quarantine",
            code="missing_row_column",
        )
    source_cols = [c for c in source_df.columns if c != ROW and c not in QUARANTINE_COLUMNS]
    q = quarantine.select(pl.col(ROW).cast(pl.Int64), *QUARANTINE_COLUMNS)
    # Only the quarantined rows of the source: a join against all of it costs a copy of the whole frame.
    src = source_df.select(pl.col(ROW).cast(pl.Int64), *source_cols).filter(
        pl.col(ROW).is_in(q[ROW].implode())
    )
    joined = q.join(src, on=ROW, how="left").sort(ROW)
    return joined.select(*source_cols, ROW, *QUARANTINE_COLUMNS)


# -- the contract -----------------------------------------------------------------------------------------
def build_contract(schema: EntitySchema, operation: str = "ingest") -> pa.DataFrameSchema:
    """A pandera (polars) contract for the VALID frame of `schema` and `operation`, generated from the YAML:
    required non-null, max lengths, exact values, Eightfold forms for dates/booleans/numbers, no whitespace
    in ids, a unique key. The Dagster shell runs it as a blocking check."""
    import pandera.polars as pa  # slow import (~1 s): only when a contract is built

    required = set(schema.required_for(operation, "xml"))
    columns: dict[str, pa.Column] = {ROW: pa.Column(pl.Int64, nullable=False, unique=True)}
    for spec in schema.fields_for(operation):
        checks: list[pa.Check] = []
        if spec.max_length and spec.type != "list":
            checks.append(pa.Check.str_length(max_value=spec.max_length))
        if spec.type == "enum" and spec.values:
            checks.append(pa.Check.isin(list(spec.values)))
        pattern = {
            "date": DATE_RE,
            "datetime": DATETIME_RE,
            "boolean": BOOLEAN_RE,
            "integer": INTEGER_RE,
            "float": FLOAT_RE,
            "email": EMAIL_SHAPE_RE,
        }.get(spec.type)
        if pattern:
            checks.append(pa.Check.str_matches(pattern))
        if spec.no_whitespace:
            checks.append(pa.Check.str_matches(NO_WHITESPACE_RE))
        columns[spec.name] = pa.Column(
            pl.String,
            checks=checks,
            nullable=spec.name not in required,
            required=spec.name in required,
            unique=spec.name == schema.key,
        )
    return pa.DataFrameSchema(columns, strict=False, name=f"{schema.entity}_{operation}")
