"""Eightfold CSV feeds (ENTITY-MAIN.csv, ENTITY-CUSTOM-FIELDS.csv), the Excel-safe quarantine CSV and the
zip bundle. Columns and order come from the entity schema only. No Dagster imports.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from snapmap_pipeline.core.schema import EntitySchema, custom_field
from snapmap_pipeline.errors import ExportError
from snapmap_pipeline.logs import get_logger

log = get_logger(__name__)

# Same normalisation as the XML lists: items trimmed, empty items dropped, joined by a bare comma
# (Eightfold's samples write "JavaScript,React").
_LIST_SEP = r"\s*,[\s,]*"
# A cell Excel would run as a formula (or that hides one behind a tab / carriage return).
_FORMULA_START = r"^[=+\-@\t\r]"


@dataclass
class CsvReport:
    """What `write_eightfold_csv` wrote, or why it skipped the CSV (the XML still goes out)."""

    rows: int
    path: Path
    skipped: bool = False
    reason: str | None = None
    files: list[Path] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["path"] = str(self.path)
        out["files"] = [str(p) for p in self.files]
        return out


def csv_columns(schema: EntitySchema, operation: str) -> list[str]:
    """The MAIN sheet's columns for `operation`, in spec order (input-only helpers excluded)."""
    return [f.name for f in schema.fields_for(operation)]


def custom_columns(schema: EntitySchema, operation: str, columns: Iterable[str]) -> list[str]:
    """`EFCUSTOM_*` / `EFCUSTOMLIST_*` columns of the frame that this entity and operation carry."""
    if not schema.custom_fields or operation == "delete":
        return []
    known = set(schema.field_names)
    return [c for c in columns if c not in known and custom_field(c) is not None]


def custom_file_name(schema: EntitySchema) -> str:
    """ENTITY-CUSTOM-FIELDS.csv: Eightfold's spec puts custom columns in their own sheet, keyed by id."""
    stem = schema.csv_file.removesuffix("-MAIN")
    return f"{stem}-CUSTOM-FIELDS.csv"


def skip_reason(frame: pl.DataFrame, schema: EntitySchema, operation: str) -> str | None:
    """Why the CSV cannot be written (a CSV-required field unmapped or blank), else None."""
    required = schema.required_for(operation, "csv")
    missing = [name for name in required if name not in frame.columns]
    if missing:
        return (
            f"the Eightfold CSV spec requires {', '.join(missing)} for {operation}, and no column maps to "
            f"{'it' if len(missing) == 1 else 'them'}; the XML feed is unaffected. Map a column to "
            f"{'it' if len(missing) == 1 else 'them'} to get the CSV."
        )
    if frame.height == 0 or not required:
        return None
    blanks = frame.select(
        [
            (pl.col(n).cast(pl.String).is_null() | (pl.col(n).cast(pl.String).str.strip_chars() == ""))
            .sum()
            .alias(n)
            for n in required
        ]
    ).row(0, named=True)
    return blank_reason(blanks, operation)


def blank_reason(blanks: dict[str, int], operation: str) -> str | None:
    """The skip reason for CSV-required fields with blank rows (`{field: blank row count}`), else None.

    Shared with the streamed path, which counts the blanks block by block.
    """
    blank = {n: c for n, c in blanks.items() if c}
    if not blank:
        return None
    detail = ", ".join(f"{n} ({c} blank row{'s' if c != 1 else ''})" for n, c in blank.items())
    return (
        f"the Eightfold CSV spec requires a value in every row for {operation}, and some are blank: "
        f"{detail}; the XML feed is unaffected. Fill those values at the source to get the CSV."
    )


def _cell(name: str, schema: EntitySchema, columns: list[str]) -> pl.Expr:
    if name not in columns:
        return pl.lit(None, dtype=pl.String).alias(name)
    spec = schema.field(name)
    expr = pl.col(name).cast(pl.String)
    if spec.type == "boolean":
        expr = expr.str.to_lowercase()
    elif spec.type == "list":
        expr = expr.str.replace_all(_LIST_SEP, ",").str.strip_chars().str.strip_chars(",")
    return expr.alias(name)


def write_eightfold_csv(frame: pl.DataFrame, schema: EntitySchema, operation: str, path: Path) -> CsvReport:
    """Write ENTITY-MAIN.csv: every spec column of `operation` in spec order (blank when unmapped),
    UTF-8, lower-case booleans, multi-values comma-joined in one quoted cell.

    Custom columns go to ENTITY-CUSTOM-FIELDS.csv beside it (key column first), as Eightfold's spec
    lays them out. When a CSV-required field is unmapped or blank the CSV is skipped, with the reason.
    """
    schema.operation(operation)
    path = Path(path)
    reason = skip_reason(frame, schema, operation)
    if reason is not None:
        log.info(
            "csv skipped",
            extra={"fields": {"entity": schema.entity, "operation": operation, "rule": "csv_required"}},
        )
        return CsvReport(rows=0, path=path, skipped=True, reason=reason)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = frame.columns
    main = frame.select([_cell(n, schema, columns) for n in csv_columns(schema, operation)])
    main.write_csv(path, quote_style="necessary", line_terminator="\n")
    files = [path]
    customs = custom_columns(schema, operation, columns)
    if customs:
        custom_path = path.parent / custom_file_name(schema)
        key = _cell(schema.key, schema, columns)
        frame.select(key, *[_cell(c, schema, columns) for c in customs]).write_csv(
            custom_path, quote_style="necessary", line_terminator="\n"
        )
        files.append(custom_path)
    log.info(
        "csv written",
        extra={"fields": {"entity": schema.entity, "operation": operation, "rows": main.height}},
    )
    return CsvReport(rows=main.height, path=path, files=files)


def write_quarantine_csv(df: pl.DataFrame, path: Path) -> Path:
    """Write rows for people to open in Excel: UTF-8 with a BOM (so Excel reads it as UTF-8), and any
    text cell that starts like a formula (= + - @, tab, CR) prefixed with a single quote.

    Only this human-facing file is guarded; the machine feed keeps the data exactly.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    guarded = df.with_columns(
        [
            pl.when(pl.col(name).str.contains(_FORMULA_START))
            .then(pl.lit("'") + pl.col(name))
            .otherwise(pl.col(name))
            .alias(name)
            for name, dtype in df.schema.items()
            if dtype == pl.String
        ]
    )
    guarded.write_csv(path, quote_style="necessary", include_bom=True, line_terminator="\n")
    return path


def bundle(paths: Iterable[Path], zip_path: Path) -> Path:
    """Zip the files with each at the root of the archive (Eightfold rejects folders inside)."""
    zip_path = Path(zip_path)
    files = [Path(p) for p in paths]
    names = [p.name for p in files]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ExportError(
            f"two files named {dupes[0]} cannot both sit at the zip root; Eightfold takes one file of each "
            "kind per bundle",
            code="bundle_duplicate_name",
            name=dupes[0],
        )
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for p in files:
            zf.write(p, arcname=p.name)
    return zip_path
