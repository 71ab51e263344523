"""Larger-than-memory processing: a CSV file is streamed in record-aligned byte blocks through the same
map → transform → validate → export steps as `process_bytes`, in bounded memory. No Dagster imports here.

Memory is one block's frames plus what whole-file rules must remember: the values of the key and of
company emails kept so far (with the row that kept them) and the distinct keys for the reference check,
i.e. proportional to the number of distinct keys (about 40-60 bytes per row), never to the file size.
"""

from __future__ import annotations

import codecs
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from snapmap_pipeline.core.pipeline import (
    ROW,
    ProcessReport,
    infer_step,
    map_step,
    process_bytes,
    read_step,
    review_or_raise,
)
from snapmap_pipeline.core.schema import EntitySchema, load_schema
from snapmap_pipeline.errors import CellTooLargeError, DecodeError, InputError, MappingReviewError
from snapmap_pipeline.logs import get_logger
from snapmap_pipeline.settings import Settings, get_settings

log = get_logger(__name__)

# Files above this size are streamed by `process_file`; smaller ones are read whole (faster).
STREAM_ABOVE_BYTES = 64 * 1024 * 1024
PREFIX_BYTES = 4 * 1024 * 1024  # header, delimiter, profiles, entity and mapping come from this much
SAMPLE_BYTES = 1024 * 1024  # encoding detection looks at this much
COPY_BLOCK = 4 * 1024 * 1024  # transcoding and file appends move this much at a time
MIN_BLOCK_BYTES = 64 * 1024
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_DATE_KINDS = ("date", "datetime")


# -- choosing the path ------------------------------------------------------------------------------
def process_file(
    path: Path,
    *,
    out_dir: Path,
    entity: str | None = None,
    tenant: str | None = None,
    operation: str = "ingest",
    drop_time: datetime | None = None,
    settings: Settings | None = None,
    quality: bool = True,
    stream_above: int = STREAM_ABOVE_BYTES,
    chunk_rows: int = 50_000,
) -> ProcessReport:
    """`process_path` for CSV files above `stream_above` bytes, `process_bytes` otherwise (and for Excel,
    which cannot be streamed). Same outputs and report either way."""
    path = Path(path)
    if path.stat().st_size > stream_above and not _is_excel(path):
        return process_path(
            path,
            out_dir=out_dir,
            entity=entity,
            tenant=tenant,
            operation=operation,
            drop_time=drop_time,
            settings=settings,
            quality=quality,
            chunk_rows=chunk_rows,
        )
    return process_bytes(
        path.read_bytes(),
        path.name,
        out_dir=out_dir,
        entity=entity,
        tenant=tenant,
        operation=operation,
        drop_time=drop_time,
        settings=settings,
        quality=quality,
    )


def _is_excel(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(8)
    return head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"))


# -- encodings --------------------------------------------------------------------------------------
def _source_encoding(sample: bytes, filename: str) -> str:
    """The file's encoding from its first bytes, with the same rules as core/read.py."""
    from snapmap_pipeline.core.read import _bomless_utf16, _decode_legacy

    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    for bom, name in _BOMS:
        if sample.startswith(bom):
            return name
    bomless = _bomless_utf16(sample[:4096])
    if bomless:
        return bomless
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(sample, final=False)
    except UnicodeDecodeError:
        return _decode_legacy(sample, filename)[1]
    return "utf-8"


def _transcode(src: Path, encoding: str, dest: Path, filename: str) -> None:
    """Re-encode `src` as UTF-8 into `dest` in fixed-size blocks (flat memory), dropping a BOM."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    skip = next((len(bom) for bom, name in _BOMS if name == encoding), 0)
    offset = 0
    with src.open("rb") as fin, dest.open("wb") as fout:
        fin.seek(skip)
        offset = skip
        while block := fin.read(COPY_BLOCK):
            try:
                fout.write(decoder.decode(block).encode("utf-8"))
            except UnicodeDecodeError as exc:
                raise DecodeError(
                    f"'{filename}' could not be decoded as text: invalid {encoding} at byte "
                    f"{offset + exc.start}. Re-export it as UTF-8 CSV (or XLSX).",
                    file=filename,
                ) from exc
            offset += len(block)
        try:
            fout.write(decoder.decode(b"", final=True).encode("utf-8"))
        except UnicodeDecodeError as exc:
            raise DecodeError(
                f"'{filename}' ends inside a {encoding} character. Re-export it as UTF-8 CSV (or XLSX).",
                file=filename,
            ) from exc


# -- record-aligned blocks --------------------------------------------------------------------------
def _record_end(buf: bytes) -> int:
    """Length of the longest head of `buf` that ends at a record boundary: after a newline outside
    quotes (an even number of `"` before it; `buf` starts at a boundary). 0 when there is none."""
    pos = buf.rfind(b"\n")
    if pos < 0:
        return 0
    quotes = buf.count(b'"', 0, pos)
    while pos >= 0:
        if quotes % 2 == 0:
            return pos + 1
        prev = buf.rfind(b"\n", 0, pos)
        if prev < 0:
            return 0
        quotes -= buf.count(b'"', prev, pos)
        pos = prev
    return 0


def _blocks(path: Path, block_bytes: int) -> Iterator[bytes]:
    """The file as consecutive byte blocks of about `block_bytes`, each ending at a record boundary.

    A block grows when no boundary is found in it (a quoted cell holding newlines, or a stray quote).
    """
    carry = b""
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(block_bytes)
            if not chunk:
                if carry:
                    yield carry
                return
            buf = carry + chunk if carry else chunk
            cut = _record_end(buf)
            if cut == 0:
                carry = buf
                continue
            yield buf[:cut]
            carry = buf[cut:]


# -- parsing one block ------------------------------------------------------------------------------
@dataclass
class _Layout:
    """How every block is parsed: what the prefix read decided."""

    delimiter: str
    header_row: int
    names: list[str]


def _parse(buf: bytes, layout: _Layout, first: bool, filename: str) -> pl.DataFrame:
    """One block as an all-string frame named like the prefix read (same polars options as read.py)."""
    schema = {f"c{i}": pl.String for i in range(len(layout.names))}
    try:
        df = pl.read_csv(
            buf,
            has_header=False,
            separator=layout.delimiter,
            skip_rows=layout.header_row if first else 0,
            schema=schema,
            null_values=[""],
            quote_char='"',
            missing_columns="insert",
        )
    except (pl.exceptions.ComputeError, pl.exceptions.SchemaError) as exc:
        text = str(exc).lower()
        if "more fields" in text or "not specified in schema" in text:
            raise InputError(
                f"'{filename}' has rows with more cells than its header past its first "
                f"{PREFIX_BYTES // (1024 * 1024)} MB, which a streamed file cannot widen. Fix the export "
                "(a missing quote around a cell with the delimiter is the usual cause).",
                code="ragged_rows",
                file=filename,
            ) from exc
        raise
    df.columns = layout.names
    return df.slice(1) if first else df


def _number(df: pl.DataFrame, first_row: int) -> tuple[pl.DataFrame, int]:
    """`_row` as read_step numbers it, then blank lines dropped: (frame, blank lines)."""
    df = df.with_row_index(ROW, offset=first_row).with_columns(pl.col(ROW).cast(pl.Int64))
    if df.width <= 1 or df.height == 0:
        return df, 0
    blank = pl.all_horizontal(pl.exclude(ROW).is_null())
    blanks = int(df.select(blank.sum()).item())
    return (df.filter(~blank) if blanks else df), blanks


def _check_cells(df: pl.DataFrame, filename: str, settings: Settings) -> None:
    """The cell-size guard of read.py, per block."""
    if df.height == 0:
        return
    sizes = df.select(pl.exclude(ROW).str.len_bytes().max()).row(0)
    for name, size in zip([c for c in df.columns if c != ROW], sizes, strict=True):
        if size is not None and size > settings.max_cell_bytes:
            raise CellTooLargeError(
                f"'{filename}' column '{name}' has a cell of {size:,} bytes, over the "
                f"{settings.max_cell_bytes:,} byte limit. Check the export (a broken quote "
                "often swallows rows) or raise SNAPMAP_MAX_CELL_BYTES.",
                file=filename,
                column=name,
                bytes=size,
            )


# -- whole-file state -------------------------------------------------------------------------------
@dataclass
class _Sub:
    source: str
    target: str | None


@dataclass
class _SubMapping:
    items: list[_Sub]


@dataclass
class _References:
    """Reference checks (e.g. MANAGER_ID → EMPLOYEE_ID) over the whole file: the distinct keys seen so
    far and the references not matched yet, with their row counts."""

    ref: str
    target: str
    keys: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema={"k": pl.String}))
    pending: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema={"k": pl.String, "n": pl.UInt32})
    )

    def add(self, frame: pl.DataFrame) -> None:
        if self.ref not in frame.columns or self.target not in frame.columns:
            return
        batch_keys = frame.select(pl.col(self.target).drop_nulls().unique().alias("k"))
        self.pending = self.pending.join(batch_keys, on="k", how="anti")
        refs = frame.select(pl.col(self.ref).alias("k")).drop_nulls().group_by("k").agg(pl.len().alias("n"))
        refs = refs.join(batch_keys, on="k", how="anti").join(self.keys, on="k", how="anti")
        if refs.height:
            self.pending = (
                pl.concat([self.pending, refs.cast({"n": pl.UInt32})]).group_by("k").agg(pl.col("n").sum())
            )
        new = batch_keys.join(self.keys, on="k", how="anti")
        if new.height:
            self.keys = pl.concat([self.keys, new], rechunk=False)

    def issue(self) -> dict[str, Any] | None:
        unknown = int(self.pending["n"].sum()) if self.pending.height else 0
        if not unknown:
            return None
        return {
            "level": "warning",
            "rule": "unknown_reference",
            "column": self.ref,
            "count": unknown,
            "message": f"{unknown} {self.ref} values match no {self.target} in the file; "
            "they are exported as given",
        }


@dataclass
class _Totals:
    """Counters and merged issues over all batches (the report is built from these)."""

    rows_in: int = 0
    rows_valid: int = 0
    rows_quarantined: int = 0
    blanks: int = 0
    batches: int = 0
    rule_counts: dict[str, int] = field(default_factory=dict)
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)
    derived: dict[str, int] = field(default_factory=dict)
    normalised: dict[str, int] = field(default_factory=dict)
    date_orders: dict[str, str] = field(default_factory=dict)
    sql_model: str | None = None

    def add_issues(self, issues: list[dict[str, Any]]) -> None:
        for issue in issues:
            if issue.get("rule") == "unknown_reference":
                continue  # decided over the whole file by _References
            key = json.dumps({k: v for k, v in issue.items() if k != "count"}, sort_keys=True, default=str)
            if key in self.issues and "count" in issue:
                self.issues[key]["count"] += issue["count"]
            else:
                self.issues.setdefault(key, dict(issue))


# -- the streamed path ------------------------------------------------------------------------------
def process_path(
    path: Path,
    *,
    out_dir: Path,
    entity: str | None = None,
    tenant: str | None = None,
    operation: str = "ingest",
    drop_time: datetime | None = None,
    settings: Settings | None = None,
    chunk_rows: int = 50_000,
    quality: bool = True,
) -> ProcessReport:
    """Process a CSV file of any size in bounded memory; same outputs and report.json as `process_bytes`.

    Two passes over the file after an optional transcode to UTF-8: the first checks every block parses
    and gathers the day/month evidence of the date columns; the second maps, validates and appends the
    XML, CSV and quarantine block by block. Duplicates are decided across the whole file (first kept).
    The quality report runs on the first `quality_sample_rows` valid rows and says it is sampled.
    The `max_file_bytes` guard does not apply here: memory does not grow with the file.
    """
    settings = settings or get_settings()
    started = time.perf_counter()
    path = Path(path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    filename = path.name
    drop_time = drop_time or datetime.now(UTC)
    with path.open("rb") as fh:
        sample = fh.read(SAMPLE_BYTES)
    if not sample:
        return process_bytes(b"", filename, out_dir=out_dir, settings=settings)  # raises EmptyFileError
    if _is_excel(path):
        raise InputError(
            f"'{filename}' is an Excel workbook, which cannot be streamed; use process_file or export CSV",
            code="not_streamable",
            file=filename,
        )

    with tempfile.TemporaryDirectory(prefix=".snapmap-stream-", dir=out_dir) as tmp_name:
        tmp = Path(tmp_name)
        encoding = _source_encoding(sample, filename)
        src = path
        if encoding not in ("utf-8", "utf-8-sig"):
            src = tmp / "source.utf8.csv"
            _transcode(path, encoding, src, filename)

        # -- the prefix: layout, entity, mapping --------------------------------------------------
        with src.open("rb") as fh:
            head = fh.read(PREFIX_BYTES + 1)
        truncated = len(head) > PREFIX_BYTES
        prefix = head[: _record_end(head[:PREFIX_BYTES]) or PREFIX_BYTES] if truncated else head
        df, read_report = read_step(prefix, filename, settings)
        read_report.encoding = encoding
        layout = _Layout(read_report.delimiter or ",", read_report.header_row, list(read_report.columns))
        guess, profiles = infer_step(df, filename, entity=entity, tenant=tenant, settings=settings)
        schema = load_schema(guess.entity)
        schema.operation(operation)
        mapping = map_step(df, profiles, schema, tenant=tenant, filename=filename, settings=settings)
        try:
            review_or_raise(mapping, schema, operation, settings)
        except MappingReviewError as exc:
            blocked = {
                "file": filename,
                "status": "blocked",
                "entity": schema.entity,
                "operation": operation,
                "tenant": tenant,
                "rows_in": None,
                "rows_read_for_mapping": df.height,
                "mapping": mapping.to_dict(),
                "review": exc.details.get("reasons", []),
                "outputs": {},
            }
            (out_dir / "report.json").write_text(json.dumps(blocked, indent=2, default=str))
            raise
        avg_row = max(1, len(prefix) // max(1, df.height + 1))
        block_bytes = max(MIN_BLOCK_BYTES, chunk_rows * avg_row)
        del df, profiles

        # -- pass 1: every block parses; day/month evidence of the date fields ---------------------
        try:
            evidence = _evidence_pass(src, layout, mapping, schema, block_bytes, drop_time, tenant, settings)
        except pl.exceptions.ComputeError as exc:
            if "utf-8" not in str(exc).lower() or src != path:
                raise InputError(
                    f"'{filename}' could not be parsed as CSV ({exc}). Check that it is a plain CSV export.",
                    code="malformed_csv",
                    file=filename,
                ) from exc
            # Valid UTF-8 at the start, not later: legacy-decode it as read.py would.
            from snapmap_pipeline.core.read import DETECT_BYTES, _decode_legacy

            with path.open("rb") as fh:
                encoding = _decode_legacy(fh.read(DETECT_BYTES), filename)[1]
            read_report.encoding = encoding
            read_report.warnings.append(
                "the file is not valid UTF-8 after its first bytes; decoded as " + encoding
            )
            src = tmp / "source.utf8.csv"
            _transcode(path, encoding, src, filename)
            evidence = _evidence_pass(src, layout, mapping, schema, block_bytes, drop_time, tenant, settings)

        # -- pass 2: map, transform, validate, export block by block -------------------------------
        totals = _Totals()
        outputs = _export_pass(
            src,
            tmp,
            out_dir,
            layout=layout,
            mapping=mapping,
            schema=schema,
            operation=operation,
            evidence=evidence,
            block_bytes=block_bytes,
            drop_time=drop_time,
            tenant=tenant,
            settings=settings,
            totals=totals,
            quality=quality,
            filename=filename,
        )

    if totals.blanks:
        read_report.warnings.append(f"{totals.blanks} blank line(s) skipped")
    read_report.rows = totals.rows_in + totals.blanks
    issues = list(totals.issues.values())
    if outputs["csv"] is None:
        issues.append({"level": "warning", "rule": "csv_skipped", "message": outputs["csv_report"]["reason"]})
    report = ProcessReport(
        filename=filename,
        entity=schema.entity,
        operation=operation,
        tenant=tenant,
        rows_in=totals.rows_in,
        rows_valid=totals.rows_valid,
        rows_quarantined=totals.rows_quarantined,
        mapping=mapping.to_dict(),
        issues=issues,
        outputs=outputs,
        read=read_report.to_dict(),
        inference=guess.to_dict(),
        transform={
            "derived": totals.derived,
            "normalised": totals.normalised,
            "sql_model": totals.sql_model,
            "rows": totals.rows_in,
        },
        seconds=time.perf_counter() - started,
    )
    if report.rows_valid + report.rows_quarantined != report.rows_in:  # pragma: no cover - a bug
        raise InputError("row conservation broken while streaming", code="row_conservation")
    (out_dir / "report.json").write_text(json.dumps(report.to_dict(), indent=2, default=str))
    log.info(
        "streamed",
        extra={
            "fields": {
                "rows_in": totals.rows_in,
                "valid": totals.rows_valid,
                "quarantined": totals.rows_quarantined,
                "batches": totals.batches,
            }
        },
    )
    return report


def _batches(src: Path, layout: _Layout, block_bytes: int, filename: str, settings: Settings):
    """(frame with `_row`, blank lines) per block, numbered as read_step numbers the whole file."""
    next_row = layout.header_row + 2
    for i, buf in enumerate(_blocks(src, block_bytes)):
        raw = _parse(buf, layout, i == 0, filename)
        height = raw.height
        df, blanks = _number(raw, next_row)
        next_row += height
        _check_cells(df, filename, settings)
        yield df, blanks


def _evidence_pass(
    src: Path,
    layout: _Layout,
    mapping: Any,
    schema: EntitySchema,
    block_bytes: int,
    drop_time: datetime,
    tenant: str | None,
    settings: Settings,
) -> dict[str, dict[str, bool]]:
    """Day/month evidence per date field over the whole file, from the date columns only (after the
    same mapping and SQL model as pass 2, so the values are those validate will see)."""
    from snapmap_pipeline.core.dates import date_evidence, merge_evidence
    from snapmap_pipeline.core.transform import apply_mapping, transform

    items = [
        _Sub(i.source, i.target)
        for i in mapping.items
        if i.target and schema.has_field(i.target) and schema.field(i.target).type in _DATE_KINDS
    ]
    fields = sorted({i.target for i in items if i.target})
    found: dict[str, dict[str, bool]] = {}
    for df, _ in _batches(src, layout, block_bytes, src.name, settings):
        if not items or df.height == 0:
            continue
        sub = df.select(ROW, *{i.source for i in items})
        dated, _ = transform(
            apply_mapping(sub, _SubMapping(items), schema),
            schema,
            drop_time=drop_time,
            params={"tenant": tenant or ""},
            settings=settings,
        )
        for name in fields:
            values = dated[name].cast(pl.String).str.strip_chars()
            values = pl.select(pl.when(values != "").then(values)).to_series()
            found[name] = merge_evidence(found.get(name), date_evidence(values, schema.field(name).type))
    return found


def _append(part: Path, dest: Path, first: bool) -> None:
    """Append a CSV written for one batch to `dest`; later batches leave out their header line."""
    with part.open("rb") as fin, dest.open("wb" if first else "ab") as fout:
        if not first:
            fin.readline()
        shutil.copyfileobj(fin, fout, COPY_BLOCK)


def _export_pass(
    src: Path,
    tmp: Path,
    out_dir: Path,
    *,
    layout: _Layout,
    mapping: Any,
    schema: EntitySchema,
    operation: str,
    evidence: dict[str, dict[str, bool]],
    block_bytes: int,
    drop_time: datetime,
    tenant: str | None,
    settings: Settings,
    totals: _Totals,
    quality: bool,
    filename: str,
) -> dict[str, Any]:
    from snapmap_pipeline.core.export.csv import write_eightfold_csv, write_quarantine_csv
    from snapmap_pipeline.core.export.xml import own_xsd, validate_xml, write_xml
    from snapmap_pipeline.core.mapping import load_overrides
    from snapmap_pipeline.core.transform import apply_mapping, transform
    from snapmap_pipeline.core.validate import attach_source, validate, validation_config

    overrides = load_overrides(tenant, settings) if tenant else None
    date_order = (overrides.date_order if overrides else None) or settings.date_order
    refs = [
        _References(r, t)
        for r, t in validation_config(settings).reference_checks.get(schema.entity, {}).items()
    ]
    seen: dict[str, pl.DataFrame] = {}
    required_csv = schema.required_for(operation, "csv")
    csv_state: dict[str, Any] = {"reason": None, "blank": {}, "files": [], "rows": 0}
    sample: list[pl.DataFrame] = []
    sample_rows = settings.quality_sample_rows
    q_path = out_dir / "quarantine.csv"

    def valid_frames() -> Iterator[pl.DataFrame]:
        # A loop over blocks (not rows): each block goes through the whole path before the next is read.
        for df, blanks in _batches(src, layout, block_bytes, filename, settings):
            first = totals.batches == 0
            totals.batches += 1
            totals.blanks += blanks
            transformed, treport = transform(
                apply_mapping(df, mapping, schema),
                schema,
                drop_time=drop_time,
                params={"tenant": tenant or ""},
                settings=settings,
            )
            result = validate(
                transformed,
                schema,
                operation,
                settings=settings,
                date_order=date_order,
                date_evidence=evidence,
                seen=seen,
            )
            for name, new in result.kept.items():
                seen[name] = pl.concat([seen[name], new], rechunk=False) if name in seen else new
            for ref in refs:
                ref.add(transformed)
            totals.rows_in += result.rows_in
            totals.rows_valid += result.rows_valid
            totals.rows_quarantined += result.rows_quarantined
            for k, v in result.rule_counts.items():
                totals.rule_counts[k] = totals.rule_counts.get(k, 0) + v
            for k, v in treport.derived.items():
                totals.derived[k] = totals.derived.get(k, 0) + v
            for k, v in treport.normalised.items():
                totals.normalised[k] = totals.normalised.get(k, 0) + v
            totals.sql_model = treport.sql_model
            totals.date_orders.update({k: v for k, v in result.date_orders.items() if v != "empty"})
            totals.add_issues(result.issues)

            part = tmp / "quarantine.part.csv"
            write_quarantine_csv(attach_source(df, result.quarantine), part)
            _append(part, q_path, first)
            _csv_batch(result.valid, first)
            if quality and sum(s.height for s in sample) < sample_rows:
                sample.append(result.valid.head(sample_rows - sum(s.height for s in sample)))
            yield result.valid

    def _csv_batch(valid: pl.DataFrame, first: bool) -> None:
        if csv_state["reason"] is not None:
            return
        for name in required_csv:
            if name in valid.columns:
                blank = int(
                    valid.select(
                        (pl.col(name).is_null() | (pl.col(name).str.strip_chars() == "")).sum()
                    ).item()
                )
                if blank:
                    csv_state["blank"][name] = csv_state["blank"].get(name, 0) + blank
        if csv_state["blank"]:
            return  # the CSV will be skipped; keep counting blanks for the reason
        report = write_eightfold_csv(valid, schema, operation, tmp / "parts" / f"{schema.csv_file}.csv")
        if report.skipped:
            csv_state["reason"] = report.reason
            return
        for part in report.files:
            _append(part, out_dir / part.name, first)
        csv_state["files"] = [out_dir / p.name for p in report.files]
        csv_state["rows"] += report.rows

    xml_path = out_dir / f"{schema.entity}.xml"
    xml_report = write_xml(valid_frames(), schema, operation, xml_path)
    xsd_errors = validate_xml(xml_path, own_xsd(schema.entity, operation))

    csv_path = out_dir / f"{schema.csv_file}.csv"
    reason = csv_state["reason"]
    if reason is None and csv_state["blank"]:
        detail = ", ".join(
            f"{n} ({c} blank row{'s' if c != 1 else ''})" for n, c in csv_state["blank"].items()
        )
        reason = (
            f"the Eightfold CSV spec requires a value in every row for {operation}, and some are blank: "
            f"{detail}; the XML feed is unaffected. Fill those values at the source to get the CSV."
        )
    if reason is not None:
        for p in csv_state["files"]:
            p.unlink(missing_ok=True)
        csv_state["files"] = []
    csv_report = {
        "rows": 0 if reason else csv_state["rows"],
        "path": str(csv_path),
        "skipped": reason is not None,
        "reason": reason,
        "files": [str(p) for p in csv_state["files"]],
    }
    for ref in refs:
        issue = ref.issue()
        if issue:
            totals.issues[f"ref:{ref.ref}"] = issue

    outputs: dict[str, Any] = {
        "xml": str(xml_path),
        "csv": None if reason else str(csv_path),
        "csv_files": csv_report["files"],
        "quarantine": str(q_path),
        "xml_report": xml_report.to_dict(),
        "csv_report": csv_report,
        "xsd_errors": xsd_errors,
        "streamed": {
            "batches": totals.batches,
            "block_bytes": block_bytes,
            "seen_values": {k: v.height for k, v in seen.items()},
        },
    }
    if quality:
        from snapmap_pipeline.core.quality import run_quality

        frame = pl.concat(sample) if sample else pl.DataFrame()
        summary = run_quality(frame, schema, operation, out_dir / "quality", sample_rows=sample_rows)
        summary["sampled"] = totals.rows_valid > frame.height
        summary["rows_valid"] = totals.rows_valid
        outputs["quality"] = summary
    return outputs
