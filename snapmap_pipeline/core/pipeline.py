"""The one code path from a dropped file to Eightfold feeds. The CLI calls `process_bytes`; the Dagster
assets call the step functions one by one. No Dagster imports here.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from snapmap_pipeline.core.schema import EntitySchema, load_all, load_schema
from snapmap_pipeline.errors import EntityUnknownError, MappingReviewError
from snapmap_pipeline.logs import get_logger
from snapmap_pipeline.settings import Settings, get_settings

log = get_logger(__name__)

ROW = "_row"
_KEY_SAFE = re.compile(r"[^a-z0-9._-]+")


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def drop_partition_key(name: str, data_or_hash: bytes | str) -> str:
    """A short, UI-safe partition key: `[a-z0-9._-]` only, ending in the content hash.

    >>> drop_partition_key("acme/Workers, Q1.csv", "ab" * 32)
    'acme.workers-q1.csv-abababababab'
    """
    digest = data_or_hash if isinstance(data_or_hash, str) else content_hash(data_or_hash)
    stem = _KEY_SAFE.sub("-", name.lower().replace("/", ".")).strip("-.")[:60].strip("-.")
    return f"{stem or 'drop'}-{digest[:12]}"


def tenant_from_name(name: str) -> str | None:
    """`<tenant>/<file>` → tenant; a bare file name has none."""
    parts = [p for p in name.replace("\\", "/").split("/") if p]
    return parts[0] if len(parts) > 1 else None


# -- steps (each is what one asset does) ------------------------------------------------------------
def read_step(data: bytes, filename: str, settings: Settings | None = None, *, sheet: str | None = None):
    """Bytes → (frame of strings with `_row`, ReadReport)."""
    from snapmap_pipeline.core.read import read_bytes

    df, report = read_bytes(data, filename, sheet=sheet, settings=settings or get_settings())
    first_row = report.header_row + 2  # spreadsheet row of the first record (1-based, header counted)
    df = df.with_row_index(ROW, offset=first_row).with_columns(pl.col(ROW).cast(pl.Int64))
    # Blank lines carry no record: drop them (they keep their row numbers out of the count) and say so.
    blank = pl.all_horizontal(pl.exclude(ROW).is_null()) if df.width > 1 else pl.lit(False)
    blanks = df.select(blank.sum()).item() if df.height else 0
    if blanks:
        df = df.filter(~blank)
        report.warnings.append(f"{blanks} blank line(s) skipped")
    log.info("read", extra={"fields": {"rows": df.height, "columns": df.width - 1, "kind": report.kind}})
    return df, report


def tenant_settings(tenant: str | None, settings: Settings | None = None) -> Settings:
    """Settings with the tenant's overrides merged in (its webmail list, its date order)."""
    from snapmap_pipeline.core.mapping import load_overrides

    settings = settings or get_settings()
    if not tenant:
        return settings
    o = load_overrides(tenant, settings)
    update: dict[str, Any] = {}
    if o.webmail_domains:
        update["webmail_domains"] = ",".join([settings.webmail_domains, *o.webmail_domains])
    if o.date_order:
        update["date_order"] = o.date_order
    return settings.model_copy(update=update) if update else settings


def source_columns(df: pl.DataFrame) -> list[str]:
    return [c for c in df.columns if c != ROW]


def infer_step(
    df: pl.DataFrame,
    filename: str,
    *,
    entity: str | None = None,
    tenant: str | None = None,
    settings: Settings | None = None,
):
    """Decide the entity: explicit argument, then the tenant override, then inference.

    Returns (EntityGuess, profiles). Raises EntityUnknownError when nothing is confident.
    """
    from snapmap_pipeline.core.infer import EntityGuess, infer_entity
    from snapmap_pipeline.core.mapping import load_overrides
    from snapmap_pipeline.core.profile import profile_frame

    settings = tenant_settings(tenant, settings)
    cols = source_columns(df)
    profiles = profile_frame(df.select(cols), settings=settings)
    forced = entity or (load_overrides(tenant, settings).entity if tenant else None)
    if forced:
        load_schema(forced)  # unknown names fail here with a clear error
        return EntityGuess(entity=forced, confidence=1.0, candidates=[(forced, 1.0)]), profiles
    guess = infer_entity(cols, profiles, filename, load_all(), settings=settings)
    if guess.entity is None:
        best = ", ".join(f"{e} {s:.2f}" for e, s in guess.candidates[:3])
        raise EntityUnknownError(
            f"cannot tell which entity this file holds (best: {best}); pass --entity or set 'entity' "
            f"in the tenant overrides",
            candidates=guess.candidates[:5],
        )
    return guess, profiles


def map_step(
    df: pl.DataFrame,
    profiles: dict,
    schema: EntitySchema,
    *,
    tenant: str | None = None,
    filename: str | None = None,
    settings: Settings | None = None,
):
    from snapmap_pipeline.core.mapping import map_columns

    return map_columns(
        source_columns(df), profiles, schema, tenant=tenant, filename=filename, settings=settings
    )


def review_or_raise(mapping, schema: EntitySchema, operation: str, settings: Settings | None = None) -> None:
    reasons = mapping.review_reasons(schema, operation, settings or get_settings())
    if reasons:
        raise MappingReviewError(
            f"{len(reasons)} mapping issue(s) need review: {reasons[0]}", reasons=reasons
        )


@dataclass
class Validated:
    valid: pl.DataFrame
    quarantine: pl.DataFrame  # source columns + _row, _rule, _column, _message
    result: Any  # ValidationResult
    transform_report: Any  # TransformReport
    companions: Any = None  # companion.CompanionReport: companion sheets attached, XML-only values


def validate_step(
    df: pl.DataFrame,
    mapping,
    schema: EntitySchema,
    *,
    operation: str = "ingest",
    drop_time: datetime | None = None,
    tenant: str | None = None,
    settings: Settings | None = None,
    companions: list | None = None,
) -> Validated:
    """Mapped → transformed (SQL model) → validated; quarantine keeps the source columns.

    Then the records are completed for the XSD (core/companion.py): XML-only values from the SQL model or
    the tenant's parameters, and `companions` (CompanionInput sheets) attached as repeated groups; a
    record the XSD would still refuse (e.g. a role without associated tags) is quarantined.
    """
    from snapmap_pipeline.core.companion import complete_records, fill_xml_values, sql_params
    from snapmap_pipeline.core.transform import apply_mapping, transform
    from snapmap_pipeline.core.validate import attach_source, validate

    settings = tenant_settings(tenant, settings)
    params = sql_params(schema, tenant, settings)
    mapped = apply_mapping(df, mapping, schema)
    transformed, treport = transform(
        mapped,
        schema,
        drop_time=drop_time or datetime.now(UTC),
        params=params,
        settings=settings,
    )
    transformed, derived = fill_xml_values(transformed, schema, params)
    treport.derived.update(derived)
    result = validate(
        transformed,
        schema,
        operation,
        settings=settings,
        date_order=settings.date_order,
        clean=True,  # transform's output is trimmed, blanks null: no second trim
    )
    completed = complete_records(
        result, transformed, schema, operation, inputs=companions or [], tenant=tenant
    )
    quarantine = attach_source(df, result.quarantine)
    log.info(
        "validated",
        extra={
            "fields": {
                "rows_in": result.rows_in,
                "valid": result.rows_valid,
                "quarantined": result.rows_quarantined,
            }
        },
    )
    return Validated(result.valid, quarantine, result, treport, completed)


def export_step(
    validated: Validated,
    schema: EntitySchema,
    out_dir: Path,
    *,
    operation: str = "ingest",
    settings: Settings | None = None,
    quality: bool = True,
    background: Any = None,
) -> dict[str, Any]:
    """Write `<entity>.xml`, `<ENTITY>-MAIN.csv`, `quarantine.csv` and `quality/`; validate the XML.

    With a `BackgroundQuality`, the quality report runs in its worker while the XML is written.
    """
    from snapmap_pipeline.core.companion import main_only, write_companion_outputs
    from snapmap_pipeline.core.export.csv import write_eightfold_csv, write_quarantine_csv
    from snapmap_pipeline.core.export.xml import XsdChecker, own_xsd, write_xml

    settings = settings or get_settings()
    out_dir.mkdir(parents=True, exist_ok=True)
    # Companion groups (list-of-struct columns) are for the XML; the MAIN CSV and quality see MAIN only.
    main = main_only(schema, validated.valid)
    pending = None
    if quality and background is not None:
        pending = background.submit(
            main, schema, operation, out_dir / "quality", sample_rows=settings.quality_sample_rows
        )
    xml_path = out_dir / f"{schema.entity}.xml"
    # Each chunk is checked against the XSD in a thread while the next is built: no second read.
    sample = settings.xsd_sample_records if validated.valid.height > settings.xsd_full_check_rows else None
    checker = XsdChecker(
        own_xsd(schema.entity, operation), schema.xml.root, schema.xml.record, sample_records=sample
    )
    # The frame is in memory already: two chunks built at once cost one more chunk and use both cores.
    xml_report = write_xml(validated.valid, schema, operation, xml_path, on_chunk=checker, threads=2)
    xsd_errors = checker.finish()
    csv_report = write_eightfold_csv(main, schema, operation, out_dir / f"{schema.csv_file}.csv")
    q_path = out_dir / "quarantine.csv"
    write_quarantine_csv(validated.quarantine, q_path)
    outputs: dict[str, Any] = {
        "xml": str(xml_path),
        "csv": None if csv_report.skipped else str(csv_report.path),
        "csv_files": [str(p) for p in csv_report.files],
        "quarantine": str(q_path),
        "xml_report": xml_report.to_dict(),
        "csv_report": csv_report.to_dict(),
        "xsd_errors": xsd_errors,
        "xsd_checked": {"records": checker.checked, "of": checker.written, "sampled": sample is not None},
    }
    if validated.companions is not None and (validated.companions.sheets or validated.companions.derived):
        outputs["companions"] = {
            **validated.companions.to_dict(),
            **write_companion_outputs(validated.companions, out_dir),
        }
    if pending is not None:
        outputs["quality"] = pending.result()
    elif quality:
        from snapmap_pipeline.core.quality import run_quality

        outputs["quality"] = run_quality(
            main, schema, operation, out_dir / "quality", sample_rows=settings.quality_sample_rows
        )
    return outputs


def companion_step(
    data: bytes | Callable[[], bytes],
    filename: str,
    schema: EntitySchema,
    files: dict[str, bytes] | None = None,
    settings: Settings | None = None,
) -> list:
    """The entity's companion sheets: the given files, plus a workbook's sheets named like a companion.

    `data` may be a loader, called only when the file is a workbook of an entity that has companions
    (the Dagster asset then never re-reads a large CSV from the artifacts store).
    """
    from snapmap_pipeline.core.companion import is_workbook, read_companions, workbook_companions

    inputs = read_companions(files or {}, schema, settings) if files else []
    if not schema.companions or not is_workbook(filename):
        return inputs
    given = {i.spec.csv_file for i in inputs}
    raw = data() if callable(data) else data
    inputs += [
        i for i in workbook_companions(raw, filename, schema, settings) if i.spec.csv_file not in given
    ]
    return inputs


# -- the whole path ---------------------------------------------------------------------------------
@dataclass
class ProcessReport:
    filename: str
    entity: str
    operation: str
    tenant: str | None
    rows_in: int
    rows_valid: int
    rows_quarantined: int
    mapping: dict
    issues: list = field(default_factory=list)
    outputs: dict = field(default_factory=dict)
    read: dict = field(default_factory=dict)
    inference: dict = field(default_factory=dict)
    transform: dict = field(default_factory=dict)
    seconds: float = 0.0

    def write(self, out_dir: Path) -> None:
        (out_dir / "report.json").write_text(json.dumps(self.to_dict(), indent=2, default=str))

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.filename,
            "status": "processed",
            "entity": self.entity,
            "operation": self.operation,
            "tenant": self.tenant,
            "rows_in": self.rows_in,
            "rows_valid": self.rows_valid,
            "rows_quarantined": self.rows_quarantined,
            "mapping": self.mapping,
            "issues": self.issues,
            "outputs": self.outputs,
            "read": self.read,
            "inference": self.inference,
            "transform": self.transform,
            "seconds": round(self.seconds, 3),
        }


def write_blocked_report(
    out_dir: Path,
    exc: MappingReviewError,
    *,
    filename: str,
    schema: EntitySchema,
    operation: str,
    tenant: str | None,
    mapping: Any,
    **extra: Any,
) -> None:
    """report.json for a file stopped for review: the mapping and what to fix, no outputs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    blocked = {
        "file": filename,
        "status": "blocked",
        "entity": schema.entity,
        "operation": operation,
        "tenant": tenant,
        **extra,
        "mapping": mapping.to_dict(),
        "review": exc.details.get("reasons", []),
        "outputs": {},
    }
    (out_dir / "report.json").write_text(json.dumps(blocked, indent=2, default=str))


def review_or_block(
    mapping: Any,
    schema: EntitySchema,
    operation: str,
    settings: Settings,
    *,
    out_dir: Path,
    filename: str,
    tenant: str | None,
    **extra: Any,
) -> None:
    """`review_or_raise`, leaving a blocked report.json (the mapping and what to fix) when it raises."""
    try:
        review_or_raise(mapping, schema, operation, settings)
    except MappingReviewError as exc:
        write_blocked_report(
            out_dir,
            exc,
            filename=filename,
            schema=schema,
            operation=operation,
            tenant=tenant,
            mapping=mapping,
            **extra,
        )
        raise


def report_issues(issues: list, outputs: dict[str, Any]) -> list:
    """The validator's issues plus a warning when the Eightfold CSV was skipped (the XML still went out)."""
    out = list(issues)
    if outputs.get("csv") is None:
        out.append({"level": "warning", "rule": "csv_skipped", "message": outputs["csv_report"]["reason"]})
    return out


def process_bytes(
    data: bytes,
    filename: str,
    *,
    out_dir: Path,
    entity: str | None = None,
    tenant: str | None = None,
    operation: str = "ingest",
    drop_time: datetime | None = None,
    settings: Settings | None = None,
    quality: bool = True,
    background: Any = None,
    companions: dict[str, bytes] | None = None,
) -> ProcessReport:
    """Read, infer, map, validate and export one file into `out_dir`; write `report.json`.

    `companions` maps file names (ROLE-ASSOCIATED-TAGS.csv, ...) to their bytes: the entity's companion
    sheets, attached to the MAIN records; a workbook's sheets named like a companion are read too.
    Raises InputError (unusable file) or ReviewRequired (entity/mapping needs a person; nothing is
    exported then). Rows in = rows valid + rows quarantined, always.
    """
    settings = settings or get_settings()
    started = time.perf_counter()
    df, read_report = read_step(data, filename, settings)
    guess, profiles = infer_step(df, filename, entity=entity, tenant=tenant, settings=settings)
    schema = load_schema(guess.entity)
    schema.operation(operation)
    inputs = companion_step(data, filename, schema, companions, settings)
    mapping = map_step(df, profiles, schema, tenant=tenant, filename=filename, settings=settings)
    review_or_block(
        mapping,
        schema,
        operation,
        settings,
        out_dir=out_dir,
        filename=filename,
        tenant=tenant,
        rows_in=df.height,
    )
    validated = validate_step(
        df,
        mapping,
        schema,
        operation=operation,
        drop_time=drop_time,
        tenant=tenant,
        settings=settings,
        companions=inputs,
    )
    del df  # the quarantine holds its source rows: the export has room for its chunks
    outputs = export_step(
        validated,
        schema,
        out_dir,
        operation=operation,
        settings=settings,
        quality=quality,
        background=background,
    )
    r = validated.result
    report = ProcessReport(
        filename=filename,
        entity=schema.entity,
        operation=operation,
        tenant=tenant,
        rows_in=r.rows_in,
        rows_valid=r.rows_valid,
        rows_quarantined=r.rows_quarantined,
        mapping=mapping.to_dict(),
        issues=report_issues(r.issues, outputs),
        outputs=outputs,
        read=read_report.to_dict(),
        inference=guess.to_dict(),
        transform=validated.transform_report.to_dict(),
        seconds=time.perf_counter() - started,
    )
    report.write(out_dir)
    return report
