"""Larger-than-memory processing: a CSV file is streamed in record-aligned byte blocks through the same
map → transform → validate → export steps as `process_bytes`, in bounded memory. No Dagster imports here.

Memory is one block's frames, one XML chunk being checked against the XSD, the quality sample, and what
whole-file rules must remember. A first pass over the file reads only the columns behind dates, keys,
company emails and references: it gathers the day/month evidence and, as 64-bit hashes, which key and
email values occur more than once and which references match no key. The second pass then remembers
only the values that repeat (exactly, so a hash collision can only cost memory, never a wrong result);
the reference count can be off only if two different ids share a 64-bit hash (odds about n²/2⁶⁵, under
one in a million at 5M rows), and it is a warning, never a rejection.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from snapmap_pipeline.core.blocks import (
    PREFIX_BYTES,
    Layout,
    blocks,
    number_rows,
    parse_block,
    record_end,
)
from snapmap_pipeline.core.companion import sql_params
from snapmap_pipeline.core.pipeline import (
    ROW,
    ProcessReport,
    infer_step,
    map_step,
    process_bytes,
    read_step,
    report_issues,
    review_or_block,
    tenant_settings,
)
from snapmap_pipeline.core.read import check_cells, detect_encoding
from snapmap_pipeline.core.schema import EntitySchema, load_schema
from snapmap_pipeline.errors import (
    DecodeError,
    InputError,
    SnapMapError,
)
from snapmap_pipeline.logs import get_logger
from snapmap_pipeline.settings import Settings, get_settings

log = get_logger(__name__)

# Raw bytes that always hold PREFIX_BYTES once re-encoded as UTF-8 (UTF-32 takes 4 bytes a character).
PREFIX_READ_BYTES = 4 * PREFIX_BYTES + 8
SAMPLE_BYTES = 1024 * 1024  # encoding detection looks at this much
COPY_BLOCK = 4 * 1024 * 1024  # transcoding and file appends move this much at a time
MIN_BLOCK_BYTES = 64 * 1024
XML_SLICE_ROWS = 20_000
XML_THREADS = 2  # slices rendered at once; the next block is parsed and validated meanwhile
_BOMS = {
    "utf-32-le": codecs.BOM_UTF32_LE,
    "utf-32-be": codecs.BOM_UTF32_BE,
    "utf-16-le": codecs.BOM_UTF16_LE,
    "utf-16-be": codecs.BOM_UTF16_BE,
}
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
    stream_above: int | None = None,
    chunk_rows: int = 50_000,
) -> ProcessReport:
    """`process_path` for CSV files above `stream_above` bytes (default: SNAPMAP_STREAM_ABOVE_BYTES),
    `process_bytes` otherwise (and for Excel, which cannot be streamed). Same outputs and report."""
    settings = settings or get_settings()
    limit = settings.stream_above_bytes if stream_above is None else stream_above
    path = Path(path)
    if path.stat().st_size > limit and not _is_excel(path):
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
        return is_excel_head(fh.read(8))


def is_excel_head(head: bytes) -> bool:
    """Whether a file's first bytes are a workbook's (xlsx zip or xls OLE2): those cannot be streamed."""
    return head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"))


# -- encodings --------------------------------------------------------------------------------------
def _transcode(src: Path, encoding: str, dest: Path, filename: str) -> None:
    """Re-encode `src` as UTF-8 into `dest` in fixed-size blocks (flat memory), dropping a BOM."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    bom = _BOMS.get(encoding)
    with src.open("rb") as fin:
        offset = len(bom) if bom and fin.read(len(bom)) == bom else 0
    with src.open("rb") as fin, dest.open("wb") as fout:
        fin.seek(offset)
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


# -- the prefix: what the entity and the mapping are decided from -------------------------------------
def _cut_prefix(head: bytes) -> bytes:
    """The first PREFIX_BYTES of UTF-8 text `head`, ended at a record boundary (all of it when shorter)."""
    if len(head) <= PREFIX_BYTES:
        return head
    return head[: record_end(head[:PREFIX_BYTES]) or PREFIX_BYTES]


def read_prefix(
    head: bytes, filename: str, settings: Settings | None = None, *, complete: bool = False
) -> tuple[pl.DataFrame, Any]:
    """The frame `process_path` infers and maps from, given the file's first `PREFIX_READ_BYTES` raw
    bytes (`complete` when that is the whole file): (frame with `_row`, ReadReport).

    The Dagster assets show and map this frame for a streamed drop, then hand the reviewed mapping to
    `process_path(mapping=...)`, so the mapping a person reviews is the one the file goes out with.
    """
    settings = settings or get_settings()
    encoding = detect_encoding(head[:SAMPLE_BYTES], filename)
    if encoding not in ("utf-8", "utf-8-sig"):
        bom = _BOMS.get(encoding)
        raw = head[len(bom) :] if bom and head.startswith(bom) else head
        try:
            text = codecs.getincrementaldecoder(encoding)("strict").decode(raw, final=complete)
        except UnicodeDecodeError as exc:
            raise DecodeError(
                f"'{filename}' could not be decoded as text: invalid {encoding} at byte {exc.start}. "
                "Re-export it as UTF-8 CSV (or XLSX).",
                file=filename,
            ) from exc
        head = text.encode("utf-8")
    df, report = read_step(_cut_prefix(head[: PREFIX_BYTES + 1]), filename, settings)
    report.encoding = encoding
    return df, report


# -- the mapping, in a short-lived process ------------------------------------------------------------
def _infer_and_map(
    prefix: bytes,
    filename: str,
    entity: str | None,
    tenant: str | None,
    operation: str,
    settings: Settings,
) -> tuple[Any, Any]:
    """(EntityGuess, Mapping) from the file's prefix: what `process_bytes` decides before validating."""
    df, _ = read_step(prefix, filename, settings)
    guess, profiles = infer_step(df, filename, entity=entity, tenant=tenant, settings=settings)
    schema = load_schema(guess.entity)
    schema.operation(operation)
    mapping = map_step(df, profiles, schema, tenant=tenant, filename=filename, settings=settings)
    return guess, mapping


def _infer_and_map_isolated(tmp: Path, *args: Any) -> tuple[Any, Any]:
    """`_infer_and_map` in a fresh Python process: the embedding model (about 700 MB resident, never
    given back to the OS) lives and dies there, so the data passes run without it.

    A plain subprocess rather than multiprocessing's spawn, which re-runs the caller's main script.
    Arguments and result (or the SnapMapError raised) travel as pickles through `tmp`.
    """
    job, result = tmp / "mapping.args", tmp / "mapping.result"
    job.write_bytes(pickle.dumps(args))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    code = (
        "import sys; from snapmap_pipeline.core.stream import _mapping_child; _mapping_child(*sys.argv[1:])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(job), str(result)], capture_output=True, env=env, check=False
    )
    if proc.returncode != 0 or not result.exists():
        tail = proc.stderr.decode(errors="replace")[-2000:]
        raise SnapMapError(
            f"the mapping process failed (exit {proc.returncode}); its last output: {tail}",
            code="mapping_process_failed",
        )
    ok, value = pickle.loads(result.read_bytes())
    if not ok:
        raise value
    return value


def _mapping_child(job: str, result: str) -> None:
    """Entry point of the mapping process (see `_infer_and_map_isolated`)."""
    args = pickle.loads(Path(job).read_bytes())
    try:
        out: tuple[bool, Any] = (True, _infer_and_map(*args))
    except SnapMapError as exc:
        out = (False, exc)
    Path(result).write_bytes(pickle.dumps(out))


# -- pass 1: the whole-file facts --------------------------------------------------------------------
@dataclass
class _Sub:
    source: str
    target: str | None


@dataclass
class _SubMapping:
    items: list[_Sub]


@dataclass
class _Scan:
    """What pass 1 learnt about the whole file (all small)."""

    evidence: dict[str, dict[str, bool]] = field(default_factory=dict)
    # Per unique field (key, company emails): hashes of the values that occur more than once.
    repeated: dict[str, pl.Series] = field(default_factory=dict)
    # Per reference field (e.g. MANAGER_ID): (target, values matching no target in the file).
    unknown_refs: dict[str, tuple[str, int]] = field(default_factory=dict)
    # Per block: a checksum of the scanned fields, which pass 2 must see again (same values).
    checksums: list[int] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)


@dataclass
class _BlockScan:
    """What pass 1 found in one block (merged into `_Scan` in block order)."""

    fields: list[str]
    checksum: int
    evidence: dict[str, dict[str, bool]]
    loose: dict[str, pl.Series] = field(default_factory=dict)  # hashes of trimmed, lower-cased values
    exact: dict[str, pl.Series] = field(default_factory=dict)  # hashes of values as they are


def _loose(name: str) -> pl.Expr:
    """The hash of a value trimmed and lower-cased: equal values after validate's normalisation (trim,
    lower-case emails) always hash the same, so repeats are never missed."""
    return pl.col(name).str.strip_chars().str.to_lowercase().hash(seed=0)


def _checksum(frame: pl.DataFrame, fields: list[str]) -> int:
    """Order-free sum of the non-blank values' hashes, to prove both passes saw the same values."""
    if not fields or frame.height == 0:
        return 0
    parts = [
        (pl.col(n).hash(seed=1) % (1 << 32)).filter(pl.col(n).is_not_null() & (pl.col(n) != "")).sum()
        for n in fields
    ]
    return int(sum(frame.select(parts).row(0)))


def _scan_pass(
    src: Path,
    layout: Layout,
    mapping: Any,
    schema: EntitySchema,
    block_bytes: int,
    drop_time: datetime,
    tenant: str | None,
    settings: Settings,
) -> _Scan:
    """Pass 1, reading only the columns behind date fields, the key, company emails and references
    (after the same mapping and SQL model as pass 2, so the values are those validate will see).

    Raises polars' ComputeError on bytes that are not UTF-8 (the caller transcodes and starts again).
    """
    from snapmap_pipeline.core.dates import date_evidence, merge_evidence
    from snapmap_pipeline.core.transform import apply_mapping, transform
    from snapmap_pipeline.core.validate import validation_config

    config = validation_config(settings)
    unique = [schema.key, *config.company_email_fields.get(schema.entity, ())]
    refs = dict(config.reference_checks.get(schema.entity, {}))
    wanted = set(unique) | set(refs) | set(refs.values())
    items = [
        _Sub(i.source, i.target)
        for i in mapping.items
        if i.target
        and schema.has_field(i.target)
        and (i.target in wanted or schema.field(i.target).type in _DATE_KINDS)
    ]
    dates = sorted({i.target for i in items if i.target and schema.field(i.target).type in _DATE_KINDS})
    sources = sorted({i.source for i in items})
    index = {name: k for k, name in enumerate(layout.names)}
    columns = [index[s] for s in sources if s in index]
    scan = _Scan()
    # 8 bytes per value and field until the end of the pass (40 MB per field at 5M rows).
    loose: dict[str, list[pl.Series]] = {n: [] for n in unique}  # repeats, found as validate would
    exact: dict[str, list[pl.Series]] = {n: [] for n in [*refs, *refs.values()]}  # references: exact
    next_row = layout.header_row + 2
    params = sql_params(schema, tenant, settings)

    def scan_block(df: pl.DataFrame) -> _BlockScan:
        """One block's fields, checksum, date evidence and value hashes."""
        dated, _ = transform(
            apply_mapping(df, _SubMapping(items), schema),
            schema,
            drop_time=drop_time,
            params=params,
            settings=settings,
        )
        present = [n for n in sorted(wanted) if n in dated.columns]
        fields = [*dates, *present]
        dated = _blank_to_null(dated, fields)
        evidence = {name: date_evidence(dated[name], schema.field(name).type) for name in dates}
        found = _BlockScan(fields, _checksum(dated, fields), evidence)
        for name in present:
            values = dated.select(pl.col(name)).drop_nulls()
            if name in loose:
                found.loose[name] = values.select(_loose(name)).to_series()
            if name in exact:
                found.exact[name] = values.select(pl.col(name).hash(seed=0)).to_series()
        return found

    def gather(found: _BlockScan) -> None:
        scan.fields = scan.fields or found.fields
        scan.checksums.append(found.checksum)
        for name, seen in found.evidence.items():
            scan.evidence[name] = merge_evidence(scan.evidence.get(name), seen)
        for name, values in found.loose.items():
            loose[name].append(values)
        for name, values in found.exact.items():
            exact[name].append(values)

    # Blocks are parsed here, in order (the row numbers need each block's height), while the previous
    # block is transformed and hashed in a worker thread: polars releases the GIL, so both cores work.
    pending: deque[Future[_BlockScan]] = deque()
    with ThreadPoolExecutor(1, thread_name_prefix="snapmap-scan") as pool:
        for k, buf in enumerate(blocks(src, block_bytes)):
            if not columns:
                scan.checksums.append(0)
                continue
            raw = parse_block(buf, layout, k == 0, src.name, columns=columns)
            # No blank-line filter here: checksum and hashes skip blanks, which is all a blank line holds.
            df = raw.with_row_index(ROW, offset=next_row).with_columns(pl.col(ROW).cast(pl.Int64))
            next_row += raw.height
            pending.append(pool.submit(scan_block, df))
            while len(pending) > 1:  # one block parsed ahead: two blocks' columns in memory at most
                gather(pending.popleft().result())
        while pending:
            gather(pending.popleft().result())
    for name in unique:
        if loose.get(name):
            all_hashes = pl.concat(loose.pop(name))
            scan.repeated[name] = all_hashes.filter(all_hashes.is_duplicated()).unique()
    for ref, target in refs.items():
        if exact.get(ref):
            keys = pl.concat(exact[target]).unique() if exact.get(target) else pl.Series([], dtype=pl.UInt64)
            unknown = int((~pl.concat(exact[ref]).is_in(keys.implode())).sum())
            scan.unknown_refs[ref] = (target, unknown)
    return scan


# -- the streamed path ------------------------------------------------------------------------------
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
                continue  # decided over the whole file by pass 1
            key = json.dumps({k: v for k, v in issue.items() if k != "count"}, sort_keys=True, default=str)
            if key in self.issues and "count" in issue:
                self.issues[key]["count"] += issue["count"]
            else:
                self.issues.setdefault(key, dict(issue))


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
    map_in_child: bool = True,
    mapping: Any = None,
    on_batch: Callable[[pl.DataFrame, pl.DataFrame], None] | None = None,
) -> ProcessReport:
    """Process a CSV file of any size in bounded memory; same outputs and report.json as `process_bytes`.

    The entity and mapping come from the first `PREFIX_BYTES` (in a spawned child when `map_in_child`,
    so the embedding model's memory is gone before the data passes). Then, after an optional transcode
    to UTF-8, two passes: the first reads the date, key, email and reference columns only; the second
    maps, validates and writes the XML (checked against the XSD chunk by chunk, in memory), CSV and
    quarantine block by block under `*.part` names, renamed when everything succeeded, so a failed run
    leaves nothing that looks complete. Duplicates are decided across the whole file (first kept).
    The quality report runs on the first `quality_sample_rows` valid rows and says it is sampled.
    The `max_file_bytes` guard applies here too (memory does not grow with the file, but an oversize
    drop is still refused unless the deployment raised the limit).

    `mapping` (with `entity`): a Mapping already decided on `read_prefix`'s frame (the Dagster assets
    review it first); no inference then. `on_batch(valid, quarantine)` sees each block's valid rows and
    its quarantine rows (with their source columns, as in quarantine.csv) as they are written, so a
    caller can keep a head sample or check each block without holding the file.
    """
    if mapping is not None and not entity:
        raise SnapMapError(
            "process_path(mapping=...) needs the entity the mapping was made for; pass entity=",
            code="mapping_without_entity",
        )
    settings = settings or get_settings()
    started = time.perf_counter()
    path = Path(path)
    if path.stat().st_size > settings.max_file_bytes:
        from snapmap_pipeline.core.read import _too_large

        raise _too_large(path.name, path.stat().st_size, settings)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    filename = path.name
    drop_time = drop_time or datetime.now(UTC)
    # A report from an earlier run must not sit beside feeds this run has not finished.
    (out_dir / "report.json").unlink(missing_ok=True)
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

    if quality and settings.quality_sample_rows >= settings.quality_gx_min_rows:
        _warm_quality()
    with tempfile.TemporaryDirectory(prefix=".snapmap-stream-", dir=out_dir) as tmp_name:
        tmp = Path(tmp_name)
        encoding = detect_encoding(sample, filename)
        src = path
        if encoding not in ("utf-8", "utf-8-sig"):
            src = tmp / "source.utf8.csv"
            _transcode(path, encoding, src, filename)

        # -- the prefix: layout, entity, mapping --------------------------------------------------
        with src.open("rb") as fh:
            prefix = _cut_prefix(fh.read(PREFIX_BYTES + 1))
        df, read_report = read_step(prefix, filename, settings)
        read_report.encoding = encoding
        layout = Layout(read_report.delimiter or ",", read_report.header_row, list(read_report.columns))
        if mapping is not None:  # decided (and reviewed) by the caller on `read_prefix`'s frame
            from snapmap_pipeline.core.infer import EntityGuess

            guess = EntityGuess(entity=entity, confidence=1.0, candidates=[(str(entity), 1.0)])
        else:
            args = (prefix, filename, entity, tenant, operation, settings)
            guess, mapping = _infer_and_map_isolated(tmp, *args) if map_in_child else _infer_and_map(*args)
        schema = load_schema(guess.entity)
        schema.operation(operation)
        review_or_block(
            mapping,
            schema,
            operation,
            settings,
            out_dir=out_dir,
            filename=filename,
            tenant=tenant,
            rows_in=None,
            rows_read_for_mapping=df.height,
        )
        avg_row = max(1, len(prefix) // max(1, df.height + 1))
        block_bytes = max(MIN_BLOCK_BYTES, chunk_rows * avg_row)
        del df, prefix

        # -- pass 1: day/month evidence, repeated keys and emails, unknown references --------------
        vsettings = tenant_settings(tenant, settings)
        scan_args = (layout, mapping, schema, block_bytes, drop_time, tenant, vsettings)
        try:
            scan = _scan_pass(src, *scan_args)
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
            scan = _scan_pass(src, *scan_args)

        # -- pass 2: map, transform, validate, export block by block -------------------------------
        totals = _Totals()
        outputs = _export_pass(
            src,
            out_dir,
            layout=layout,
            mapping=mapping,
            schema=schema,
            operation=operation,
            scan=scan,
            block_bytes=block_bytes,
            drop_time=drop_time,
            tenant=tenant,
            settings=vsettings,
            totals=totals,
            quality=quality,
            filename=filename,
            on_batch=on_batch,
        )

    if totals.blanks:
        read_report.warnings.append(f"{totals.blanks} blank line(s) skipped")
    read_report.rows = totals.rows_in + totals.blanks
    report = ProcessReport(
        filename=filename,
        entity=schema.entity,
        operation=operation,
        tenant=tenant,
        rows_in=totals.rows_in,
        rows_valid=totals.rows_valid,
        rows_quarantined=totals.rows_quarantined,
        mapping=mapping.to_dict(),
        issues=report_issues(list(totals.issues.values()), outputs),
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
    report.write(out_dir)
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


def _import_gx() -> None:
    import great_expectations  # noqa: F401


def _warm_quality() -> None:
    """Import GX (3-5 s of Python) in a thread while the mapping child and the first pass run, so the
    quality report, which runs beside the second pass, starts at once. A later import of it in another
    thread waits for this one (the import lock), so it is never imported twice."""
    import threading

    threading.Thread(target=_import_gx, name="snapmap-gx-import", daemon=True).start()


def _batches(src: Path, layout: Layout, block_bytes: int, filename: str, settings: Settings):
    """(frame with `_row`, blank lines) per block, numbered as read_step numbers the whole file."""
    next_row = layout.header_row + 2
    for i, buf in enumerate(blocks(src, block_bytes)):
        raw = parse_block(buf, layout, i == 0, filename)
        height = raw.height
        df, blanks = number_rows(raw, next_row)
        next_row += height
        check_cells(df, filename, settings)
        yield df, blanks


def _part(path: Path) -> Path:
    """Where an output is written until the whole run succeeded."""
    return path.with_name(path.name + ".part")


def _append(part: Path, dest: Path, first: bool) -> None:
    """Append a CSV written for one batch to `dest`; later batches leave out their header line."""
    with part.open("rb") as fin, dest.open("wb" if first else "ab") as fout:
        if not first:
            fin.readline()
        shutil.copyfileobj(fin, fout, COPY_BLOCK)


def _export_pass(
    src: Path,
    out_dir: Path,
    *,
    layout: Layout,
    mapping: Any,
    schema: EntitySchema,
    operation: str,
    scan: _Scan,
    block_bytes: int,
    drop_time: datetime,
    tenant: str | None,
    settings: Settings,
    totals: _Totals,
    quality: bool,
    filename: str,
    on_batch: Callable[[pl.DataFrame, pl.DataFrame], None] | None = None,
) -> dict[str, Any]:
    """Pass 2: every block through transform and validate; XML, CSV and quarantine appended to their
    `*.part` files, renamed at the end. Any failure removes the parts and re-raises."""
    from snapmap_pipeline.core.companion import complete_records, fill_xml_values
    from snapmap_pipeline.core.export.csv import blank_reason, write_eightfold_csv, write_quarantine_csv
    from snapmap_pipeline.core.export.xml import CHUNK_ROWS, XsdChecker, own_xsd, write_xml
    from snapmap_pipeline.core.transform import apply_mapping, transform
    from snapmap_pipeline.core.validate import attach_source, validate

    params = sql_params(schema, tenant, settings)
    seen: dict[str, pl.DataFrame] = {}
    required_csv = schema.required_for(operation, "csv")
    csv_state: dict[str, Any] = {"reason": None, "blank": {}, "files": [], "rows": 0}
    sample: list[pl.DataFrame] = []
    sample_rows = settings.quality_sample_rows
    q_path = out_dir / "quarantine.csv"
    xml_path = out_dir / f"{schema.entity}.xml"
    csv_path = out_dir / f"{schema.csv_file}.csv"
    scratch = out_dir / f".{schema.entity}-parts"
    parts: list[Path] = [_part(q_path), _part(xml_path)]
    checksums = iter(scan.checksums)

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
                params=params,
                settings=settings,
            )
            transformed, derived = fill_xml_values(transformed, schema, params)
            treport.derived.update(derived)
            if _checksum(_blank_to_null(transformed, scan.fields), scan.fields) != next(checksums, None):
                raise InputError(
                    f"'{filename}': the first pass over the file saw other values in "
                    f"{', '.join(scan.fields)} than the second; the SQL model must derive those fields "
                    "from themselves only for a file to be streamed. Process it in memory instead.",
                    code="stream_scan_mismatch",
                    file=filename,
                )
            result = validate(
                transformed,
                schema,
                operation,
                settings=settings,
                date_order=settings.date_order,
                date_evidence=scan.evidence,
                seen=seen,
                clean=True,  # transform's output is trimmed, blanks null: no second trim
            )
            # XML-only values and required companion groups, as in memory; companion sheets themselves
            # are never streamed (the CLI sends a file with --companion through the in-memory path),
            # so a record that needs one is quarantined as `missing_companion`.
            complete_records(result, transformed, schema, operation, inputs=[], tenant=tenant)
            for name, new in result.kept.items():
                # Only values that occur again later need remembering (pass 1 found them).
                repeated = scan.repeated.get(name)
                if repeated is None or repeated.len() == 0:
                    continue
                new = new.filter(_loose(name).is_in(repeated.implode()))
                if new.height:
                    seen[name] = pl.concat([seen[name], new]) if name in seen else new
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
            del transformed

            part = scratch / "quarantine.csv"
            quarantined = attach_source(df, result.quarantine)
            write_quarantine_csv(quarantined, part)
            _append(part, _part(q_path), first)
            del df
            if on_batch is not None:
                on_batch(result.valid, quarantined)
            del quarantined
            _csv_batch(result.valid, first)
            if quality and sum(s.height for s in sample) < sample_rows:
                sample.append(result.valid.head(sample_rows - sum(s.height for s in sample)))
                if sum(s.height for s in sample) >= sample_rows:
                    start_quality()
            # The XML goes out in smaller slices: each slice's text is held until the XSD worker has
            # checked it, so this bounds that memory (and the lxml tree built from it).
            yield from result.valid.iter_slices(XML_SLICE_ROWS)

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
        report = write_eightfold_csv(valid, schema, operation, scratch / f"{schema.csv_file}.csv")
        if report.skipped:
            csv_state["reason"] = report.reason
            return
        for written in report.files:
            dest = _part(out_dir / written.name)
            if dest not in parts:
                parts.append(dest)
            _append(written, dest, first)
        csv_state["files"] = [out_dir / p.name for p in report.files]
        csv_state["rows"] += report.rows

    # A streamed file is large by definition: each slice's first records are checked (see XsdChecker),
    # the same share as in memory (xsd_sample_records per CHUNK_ROWS records), not xsd_sample_records of
    # every 20k-record slice: that was a quarter of the records, and XSD checks cost about 4x writing.
    check = XsdChecker(
        own_xsd(schema.entity, operation),
        schema.xml.root,
        schema.xml.record,
        sample_records=max(1, settings.xsd_sample_records * XML_SLICE_ROWS // CHUNK_ROWS),
    )
    summary: dict[str, Any] | None = None
    # The quality report runs in a thread as soon as its sample is complete, beside the rest of the
    # pass: GX is Python (it holds the GIL) while the pass is mostly polars and I/O (which release it),
    # so the two share the machine's cores. Memory: GX and one sample, as when it ran after the pass.
    checking = ThreadPoolExecutor(1, thread_name_prefix="snapmap-quality")
    job: dict[str, Any] = {}  # the report's future and the rows it checks, once started

    def start_quality() -> None:
        from snapmap_pipeline.core.quality import run_quality

        if job:
            return
        frame = pl.concat(sample) if sample else pl.DataFrame()
        sample.clear()
        job["rows"] = frame.height
        job["report"] = checking.submit(
            run_quality, frame, schema, operation, out_dir / "quality", sample_rows=sample_rows
        )

    try:
        # Slices are rendered in worker threads while this thread parses and validates the next block.
        xml_report = write_xml(
            valid_frames(), schema, operation, _part(xml_path), on_chunk=check, threads=XML_THREADS
        )
        xsd_errors = check.finish()
        if totals.rows_valid + totals.rows_quarantined != totals.rows_in:  # pragma: no cover - a bug
            raise InputError("row conservation broken while streaming", code="row_conservation")
        if quality:
            start_quality()  # a file with fewer valid rows than the sample: it starts now
            summary = job["report"].result()
            summary["sampled"] = totals.rows_valid > job["rows"]
            summary["rows_valid"] = totals.rows_valid
    except BaseException:
        with contextlib.suppress(Exception):
            check.finish()
        checking.shutdown(wait=True, cancel_futures=True)
        if job:  # the report this run started describes rows that never became a feed
            shutil.rmtree(out_dir / "quality", ignore_errors=True)
        for p in parts:
            p.unlink(missing_ok=True)
        raise
    finally:
        checking.shutdown(wait=True)
        shutil.rmtree(scratch, ignore_errors=True)
    xml_report.path = xml_path

    reason = csv_state["reason"]
    if reason is None and csv_state["blank"]:
        reason = blank_reason(csv_state["blank"], operation)
    if reason is not None:
        for p in csv_state["files"]:
            _part(p).unlink(missing_ok=True)
        csv_state["files"] = []
    for p in [q_path, xml_path, *csv_state["files"]]:
        _part(p).replace(p)  # only now do the feeds carry their real names
    csv_report = {
        "rows": 0 if reason else csv_state["rows"],
        "path": str(csv_path),
        "skipped": reason is not None,
        "reason": reason,
        "files": [str(p) for p in csv_state["files"]],
    }
    for ref, (target, unknown) in scan.unknown_refs.items():
        if unknown:
            totals.issues[f"ref:{ref}"] = {
                "level": "warning",
                "rule": "unknown_reference",
                "column": ref,
                "count": unknown,
                "message": f"{unknown} {ref} values match no {target} in the file; "
                "they are exported as given",
            }

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
            "repeated_values": {k: v.len() for k, v in scan.repeated.items()},
            "remembered_values": {k: v.height for k, v in seen.items()},
            "xsd": "checked chunk by chunk; uniqueness across chunks is the validator's duplicate rules",
            "xsd_checked": {"records": check.checked, "of": check.written},
        },
    }
    if summary is not None:
        outputs["quality"] = summary
    return outputs


def _blank_to_null(frame: pl.DataFrame, fields: list[str]) -> pl.DataFrame:
    """`fields` trimmed, blanks as nulls: as validate reads them."""
    trimmed = [pl.col(n).cast(pl.String).str.strip_chars() for n in fields if n in frame.columns]
    return frame.with_columns(pl.when(t != "").then(t) for t in trimmed)
