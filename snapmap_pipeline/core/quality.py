"""Quality report: an expectation suite built from the entity schema, run on the validated frame, with an
HTML report written beside the outputs. No Dagster imports; GX is imported lazily (~3 s).

One suite, two engines. Great Expectations runs it when at least `quality_gx_min_rows` rows (settings,
10,000 by default) are checked and
writes its Data Docs (GX's own site builder on an in-memory, ephemeral context, run by a checkpoint with
`UpdateDataDocsAction`: `out_dir/index.html` plus GX's `static/`, `expectations/` and `validations/`
pages). Below that, the same expectations are evaluated as polars expressions in one pass and
`out_dir/index.html` is a one-page report of them: for a 50-row drop GX's import and context cost ~4 s
of a run whose work is milliseconds. The summary names the engine; the unit tests hold the two engines
to the same verdicts.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from snapmap_pipeline.core.schema import EntitySchema
from snapmap_pipeline.core.validate import BOOLEAN_RE, DATE_RE, DATETIME_RE, FLOAT_RE, INTEGER_RE
from snapmap_pipeline.errors import SnapMapError
from snapmap_pipeline.logs import get_logger

log = get_logger(__name__)

_PATTERNS = {
    "date": DATE_RE,
    "datetime": DATETIME_RE,
    "boolean": BOOLEAN_RE,
    "integer": INTEGER_RE,
    "float": FLOAT_RE,
}
SITE_NAME = "snapmap"
ENGINES = ("auto", "great_expectations", "polars")

# Expectation type (GX's snake_case name, which the report labels use) → its GX class.
_GX_CLASSES = {
    "expect_column_to_exist": "ExpectColumnToExist",
    "expect_column_values_to_not_be_null": "ExpectColumnValuesToNotBeNull",
    "expect_column_values_to_be_in_set": "ExpectColumnValuesToBeInSet",
    "expect_column_values_to_match_regex": "ExpectColumnValuesToMatchRegex",
    "expect_column_value_lengths_to_be_between": "ExpectColumnValueLengthsToBeBetween",
    "expect_column_values_to_be_unique": "ExpectColumnValuesToBeUnique",
}


@dataclass(frozen=True)
class Expectation:
    """One fact of the suite, engine-neutral: GX's expectation type, its column and its arguments."""

    type: str
    column: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.type}({self.column})"


def expectation_specs(schema: EntitySchema, operation: str, columns: list[str]) -> list[Expectation]:
    """The suite for `schema`/`operation`, for the columns the frame has (the same facts the pandera
    contract uses): required columns exist and are not null, exact values, Eightfold forms for
    dates/booleans/numbers, max lengths, a unique key."""
    required = set(schema.required_for(operation, "xml"))
    out: list[Expectation] = []
    for spec in schema.fields_for(operation):
        name = spec.name
        if name in required:
            out.append(Expectation("expect_column_to_exist", name))
        if name not in columns:
            continue
        if name in required:
            out.append(Expectation("expect_column_values_to_not_be_null", name))
        if spec.type == "enum" and spec.values:
            out.append(
                Expectation("expect_column_values_to_be_in_set", name, {"value_set": list(spec.values)})
            )
        if spec.type in _PATTERNS:
            out.append(
                Expectation("expect_column_values_to_match_regex", name, {"regex": _PATTERNS[spec.type]})
            )
        if spec.max_length and spec.type != "list":
            out.append(
                Expectation("expect_column_value_lengths_to_be_between", name, {"max_value": spec.max_length})
            )
        if name == schema.key:
            out.append(Expectation("expect_column_values_to_be_unique", name))
    return out


def build_expectations(schema: EntitySchema, operation: str, columns: list[str]) -> list[Any]:
    """The suite as GX expectation objects (what the GX engine adds to its suite)."""
    import great_expectations as gx

    return [
        getattr(gx.expectations, _GX_CLASSES[e.type])(column=e.column, **e.kwargs)
        for e in expectation_specs(schema, operation, columns)
    ]


def _unexpected(e: Expectation) -> pl.Expr:
    """How many rows break `e`, as GX counts them: nulls are only ever unexpected for not-null. One
    difference: Python's `$` (GX) accepts a value ending in a newline, polars' does not; validated
    values never end in one."""
    col = pl.col(e.column)
    if e.type == "expect_column_values_to_not_be_null":
        return col.is_null().sum()
    text = col.cast(pl.String)
    if e.type == "expect_column_values_to_be_in_set":
        bad = ~col.is_in(e.kwargs["value_set"])
    elif e.type == "expect_column_values_to_match_regex":
        bad = ~text.str.contains(e.kwargs["regex"])
    elif e.type == "expect_column_value_lengths_to_be_between":
        bad = text.str.len_chars() > e.kwargs["max_value"]
    elif e.type == "expect_column_values_to_be_unique":
        bad = col.is_duplicated()
    else:
        raise SnapMapError(
            f"no polars form for {e.type}; add one to core/quality.py or run the suite with GX",
            code="quality_failed",
        )
    return (col.is_not_null() & bad).sum()


def _run_polars(frame: pl.DataFrame, suite: list[Expectation]) -> list[tuple[Expectation, bool, int | None]]:
    """[(expectation, success, unexpected rows)], the column expectations in one select."""
    present = [e for e in suite if e.type != "expect_column_to_exist" and e.column in frame.columns]
    counts = (
        frame.select(_unexpected(e).alias(f"e{i}") for i, e in enumerate(present)).row(0) if present else ()
    )
    unexpected = {id(e): int(n) for e, n in zip(present, counts, strict=True)}
    results: list[tuple[Expectation, bool, int | None]] = []
    for e in suite:  # the suite's expectations, a few per field
        if e.type == "expect_column_to_exist":
            results.append((e, e.column in frame.columns, None))
        else:
            n = unexpected.get(id(e))
            results.append((e, n == 0, n))
    return results


def _write_report(
    path: Path, name: str, results: list[tuple[Expectation, bool, int | None]], rows: int, sampled: bool
) -> None:
    """A one-page HTML report of the polars engine's results: expectations and counts, never values."""
    failed = sum(1 for _, ok, _ in results if not ok)
    body = "".join(
        f"<tr class='{'ok' if ok else 'failed'}'><td>{html.escape(e.type)}</td>"
        f"<td>{html.escape(e.column)}</td>"
        f"<td>{html.escape(', '.join(f'{k}={v}' for k, v in e.kwargs.items()))}</td>"
        f"<td>{'passed' if ok else 'FAILED'}</td><td>{'' if n is None else n}</td></tr>"
        for e, ok, n in results
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(name)} quality</title><style>"
        "body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:4px 8px}"
        "table{border-collapse:collapse}.failed{background:#fdd}</style></head><body>"
        f"<h1>{html.escape(name)}: {'passed' if not failed else f'{failed} expectation(s) failed'}</h1>"
        f"<p>{len(results)} expectations on {rows} rows{' (a sample)' if sampled else ''}, evaluated by "
        "SnapMap's polars engine: the suite great-expectations runs (with its Data Docs) on larger "
        "samples, the same expectations and counting rules. Cell values are not shown.</p>"
        "<table><tr><th>expectation</th><th>column</th><th>arguments</th><th>result</th>"
        f"<th>unexpected rows</th></tr>{body}</table></body></html>"
    )
    path.write_text(page, encoding="utf-8")


def _context(out_dir: Path) -> Any:
    """An in-memory GX context with no analytics, no progress bars, and one filesystem Data Docs site."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        data_docs_sites={
            SITE_NAME: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(out_dir.resolve()),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        },
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _label(config: Any) -> str:
    column = config.kwargs.get("column")
    return f"{config.type}({column})" if column else str(config.type)


def run_quality(
    frame: pl.DataFrame,
    schema: EntitySchema,
    operation: str,
    out_dir: Path,
    *,
    sample_rows: int = 100_000,
    engine: str = "auto",
    gx_min_rows: int | None = None,
) -> dict[str, Any]:
    """Run the schema's suite on (at most `sample_rows` of) the valid frame and write its HTML report.

    `engine`: "auto" (GX from `gx_min_rows` checked rows, else polars), "great_expectations" or "polars".
    Returns {success, evaluated, successful, failed: [expectation(column)], sampled, sample_rows,
    docs_path, engine}.
    """
    if engine not in ENGINES:
        raise SnapMapError(
            f"quality engine {engine!r} is unknown; use one of {', '.join(ENGINES)}", code="quality_engine"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sampled = frame.height > sample_rows
    columns = [c for c in frame.columns if schema.has_field(c)]
    checked = frame.head(sample_rows).select(columns)  # a slice first: no pass over the whole frame
    if engine == "auto":
        if gx_min_rows is None:
            from snapmap_pipeline.settings import get_settings

            gx_min_rows = get_settings().quality_gx_min_rows
        engine = "great_expectations" if checked.height >= gx_min_rows else "polars"
    name = f"{schema.entity}_{operation}"
    if engine == "polars":
        results = _run_polars(checked, expectation_specs(schema, operation, columns))
        failed = [e.label for e, ok, _ in results if not ok]
        _write_report(out_dir / "index.html", name, results, checked.height, sampled)
        evaluated = len(results)
    else:
        labels = _run_gx(checked, schema, operation, columns, out_dir, name)
        failed = [label for label, ok in labels if not ok]
        evaluated = len(labels)
    docs = out_dir / "index.html"
    summary = {
        "success": not failed,
        "evaluated": evaluated,
        "successful": evaluated - len(failed),
        "failed": failed,
        "sampled": sampled,
        "sample_rows": checked.height,
        "docs_path": str(docs) if docs.is_file() else None,
        "engine": engine,
    }
    log.info(
        "quality suite run",
        extra={
            "fields": {
                "entity": schema.entity,
                "engine": engine,
                "evaluated": evaluated,
                "failed": len(failed),
            }
        },
    )
    return summary


def _run_gx(
    checked: pl.DataFrame, schema: EntitySchema, operation: str, columns: list[str], out_dir: Path, name: str
) -> list[tuple[str, bool]]:
    """The suite through a GX checkpoint that also builds the Data Docs; [(label, success)]."""
    import great_expectations as gx

    pdf = checked.to_pandas()
    try:
        context = _context(out_dir)
        batch_def = (
            context.data_sources.add_pandas("snapmap")
            .add_dataframe_asset(name)
            .add_batch_definition_whole_dataframe("valid")
        )
        suite = context.suites.add(gx.ExpectationSuite(name=name))
        for expectation in build_expectations(schema, operation, columns):
            suite.add_expectation(expectation)
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch_def, suite=suite)
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=name,
                validation_definitions=[definition],
                actions=[gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=[SITE_NAME])],
                result_format="SUMMARY",
            )
        )
        result = checkpoint.run(batch_parameters={"dataframe": pdf})
    except (gx.exceptions.GreatExpectationsError, ValueError, TypeError, KeyError) as exc:
        raise SnapMapError(
            f"quality report failed: {exc}; the export is unaffected, rerun after fixing the schema",
            code="quality_failed",
            entity=schema.entity,
        ) from exc
    evaluated: list[Any] = [r for run in result.run_results.values() for r in run.results]
    return [(_label(r.expectation_config), bool(r.success)) for r in evaluated]


# -- in the background --------------------------------------------------------------------------------
def _run_from_parquet(
    sample: str, entity: str, operation: str, out_dir: str, sample_rows: int, rows_total: int
) -> dict[str, Any]:
    from snapmap_pipeline.core.schema import load_schema

    frame = pl.read_parquet(sample)
    Path(sample).unlink(missing_ok=True)
    summary = run_quality(frame, load_schema(entity), operation, Path(out_dir), sample_rows=sample_rows)
    summary["sampled"] = rows_total > sample_rows
    return summary


def _serve(conn: Any, nice: int) -> None:
    """Worker loop: import GX at once (the slow part), then run each task sent down the pipe in turn.

    `nice` lowers the worker's priority. Off by default: on a machine shared with other work a lowered
    worker was starved (the 100k-row run took 17 s instead of 11 s), and below ~200k rows the report is
    the critical path anyway.
    """
    import os
    import signal

    # A parent started with SIGTERM ignored (some CI runners, nohup-like wrappers) passes that on through
    # spawn; the worker must still stop when `close()` terminates it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if nice:
        os.nice(nice)
    import threading

    import great_expectations  # noqa: F401  (the 3-5 s import, paid while the parent reads and maps)
    from tqdm import tqdm  # GX's progress bars

    # tqdm would otherwise create a multiprocessing lock (a named semaphore) that `close()` stopping the
    # worker leaves behind, and the resource tracker warns about it.
    tqdm.set_lock(threading.RLock())
    while True:
        try:
            task = conn.recv()
        except EOFError:  # the parent went away
            return
        if task is None:
            return
        task_id, args = task
        try:
            conn.send((task_id, "ok", _run_from_parquet(*args)))
        except SnapMapError as exc:
            conn.send((task_id, "error", {"message": str(exc), "code": exc.code}))
        except Exception as exc:  # noqa: BLE001  (any failure goes back to the parent as a SnapMapError)
            conn.send(
                (task_id, "error", {"message": f"{type(exc).__name__}: {exc}", "code": "quality_failed"})
            )


class BackgroundQuality:
    """Runs quality reports in one spawned worker process, started at once so GX's import overlaps
    reading, mapping and validating, and the suite overlaps the export on the machine's other core. The
    frame reaches it as a parquet sample, so only `sample_rows` rows ever cross the process boundary.

        with BackgroundQuality() as bq:
            pending = bq.submit(valid, schema, "ingest", out / "quality", sample_rows=100_000)
            ...                       # write XML and CSV meanwhile
            summary = pending.result()

    `close()` does not wait for the worker's interpreter to wind down (about 1 s with GX loaded): the
    results are in by then, so the worker is stopped.
    """

    def __init__(self, *, nice: int = 0) -> None:
        import multiprocessing
        import threading
        from concurrent.futures import Future

        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, nice), name="snapmap-quality", daemon=True)
        self._proc.start()
        child.close()
        self._futures: dict[int, Future[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._next = 0
        self._reader = threading.Thread(target=self._read, name="snapmap-quality-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        """Hands each result from the worker to its future; a dead worker fails what is pending."""
        while True:
            try:
                task_id, status, payload = self._conn.recv()
            except (EOFError, OSError):
                break
            with self._lock:
                future = self._futures.pop(task_id, None)
            if future is None:
                continue
            if status == "ok":
                future.set_result(payload)
            else:
                future.set_exception(SnapMapError(payload["message"], code=payload["code"]))
        with self._lock:
            pending, self._futures = list(self._futures.values()), {}
        for future in pending:
            future.set_exception(
                SnapMapError(
                    "the quality worker stopped before reporting; the export is unaffected, rerun to get "
                    "the quality report",
                    code="quality_worker_died",
                )
            )

    def submit(
        self, frame: pl.DataFrame, schema: EntitySchema, operation: str, out_dir: Path, *, sample_rows: int
    ) -> Any:
        """Queue a report on (the first `sample_rows` rows of) `frame`; returns a Future of the summary."""
        from concurrent.futures import Future

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        sample = out_dir / "_sample.parquet"
        columns = [c for c in frame.columns if schema.has_field(c)]
        frame.head(sample_rows).select(columns).write_parquet(sample)  # slice first, as in run_quality
        future: Future[dict[str, Any]] = Future()
        with self._lock:
            task_id, self._next = self._next, self._next + 1
            self._futures[task_id] = future
        args = (str(sample), schema.entity, operation, str(out_dir), sample_rows, frame.height)
        try:
            self._conn.send((task_id, args))
        except (OSError, ValueError) as exc:
            with self._lock:
                self._futures.pop(task_id, None)
            raise SnapMapError(
                f"the quality worker is not running ({exc}); the export is unaffected, rerun to get the "
                "quality report",
                code="quality_worker_died",
            ) from exc
        return future

    def close(self) -> None:
        """Stop the worker (tasks not collected yet are dropped)."""
        if self._proc.is_alive():
            self._proc.terminate()  # this object's own child, by its pid
        self._proc.join(timeout=5)
        if self._proc.is_alive():  # SIGTERM ignored before the worker could reset it: never hang here
            self._proc.kill()
            self._proc.join()
        self._conn.close()
        self._reader.join(timeout=5)

    def __enter__(self) -> BackgroundQuality:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
