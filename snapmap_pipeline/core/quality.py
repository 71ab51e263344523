"""Quality report: a great-expectations suite built from the entity schema, run on the validated frame,
with Data Docs HTML written beside the outputs. No Dagster imports; GX is imported lazily (~3 s).

The Data Docs are GX's own site builder (a filesystem site on an in-memory, ephemeral context), run by a
checkpoint with `UpdateDataDocsAction`: `out_dir/index.html` plus GX's `static/`, `expectations/` and
`validations/` pages.
"""

from __future__ import annotations

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


def build_expectations(schema: EntitySchema, operation: str, columns: list[str]) -> list[Any]:
    """The GX expectations for `schema`/`operation`, for the columns the frame has (the same facts the
    pandera contract uses): required columns exist and are not null, exact values, Eightfold forms for
    dates/booleans/numbers, max lengths, a unique key."""
    import great_expectations as gx

    ex = gx.expectations
    required = set(schema.required_for(operation, "xml"))
    out: list[Any] = []
    for spec in schema.fields_for(operation):
        name = spec.name
        if name in required:
            out.append(ex.ExpectColumnToExist(column=name))
        if name not in columns:
            continue
        if name in required:
            out.append(ex.ExpectColumnValuesToNotBeNull(column=name))
        if spec.type == "enum" and spec.values:
            out.append(ex.ExpectColumnValuesToBeInSet(column=name, value_set=list(spec.values)))
        if spec.type in _PATTERNS:
            out.append(ex.ExpectColumnValuesToMatchRegex(column=name, regex=_PATTERNS[spec.type]))
        if spec.max_length and spec.type != "list":
            out.append(ex.ExpectColumnValueLengthsToBeBetween(column=name, max_value=spec.max_length))
        if name == schema.key:
            out.append(ex.ExpectColumnValuesToBeUnique(column=name))
    return out


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
) -> dict[str, Any]:
    """Run the schema's GX suite on (at most `sample_rows` of) the valid frame and write Data Docs.

    Returns {success, evaluated, successful, failed: [expectation(column)], sampled, sample_rows, docs_path}.
    """
    import great_expectations as gx

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sampled = frame.height > sample_rows
    columns = [c for c in frame.columns if schema.has_field(c)]
    pdf = frame.select(columns).head(sample_rows).to_pandas()

    name = f"{schema.entity}_{operation}"
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
    failed = [_label(r.expectation_config) for r in evaluated if not r.success]
    docs = out_dir / "index.html"
    summary = {
        "success": bool(result.success),
        "evaluated": len(evaluated),
        "successful": len(evaluated) - len(failed),
        "failed": failed,
        "sampled": sampled,
        "sample_rows": int(pdf.shape[0]),
        "docs_path": str(docs) if docs.is_file() else None,
    }
    log.info(
        "quality suite run",
        extra={"fields": {"entity": schema.entity, "evaluated": len(evaluated), "failed": len(failed)}},
    )
    return summary


# -- in the background --------------------------------------------------------------------------------
def _warm() -> None:
    """Worker initialiser: pay GX's slow import (~3 s) while the parent reads, maps and validates."""
    import great_expectations  # noqa: F401


def _run_from_parquet(
    sample: str, entity: str, operation: str, out_dir: str, sample_rows: int, rows_total: int
) -> dict[str, Any]:
    from snapmap_pipeline.core.schema import load_schema

    frame = pl.read_parquet(sample)
    Path(sample).unlink(missing_ok=True)
    summary = run_quality(frame, load_schema(entity), operation, Path(out_dir), sample_rows=sample_rows)
    summary["sampled"] = rows_total > sample_rows
    return summary


class BackgroundQuality:
    """Runs quality reports in one spawned worker process, started early so GX's import and the suite
    overlap the export on the machine's other core. The frame reaches it as a parquet sample, so only
    `sample_rows` rows ever cross the process boundary.

        with BackgroundQuality() as bq:
            pending = bq.submit(valid, schema, "ingest", out / "quality", sample_rows=100_000)
            ...                       # write XML and CSV meanwhile
            summary = pending.result()
    """

    def __init__(self) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self._pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_warm
        )

    def submit(
        self, frame: pl.DataFrame, schema: EntitySchema, operation: str, out_dir: Path, *, sample_rows: int
    ) -> Any:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        sample = out_dir / "_sample.parquet"
        columns = [c for c in frame.columns if schema.has_field(c)]
        frame.select(columns).head(sample_rows).write_parquet(sample)
        return self._pool.submit(
            _run_from_parquet, str(sample), schema.entity, operation, str(out_dir), sample_rows, frame.height
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> BackgroundQuality:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
