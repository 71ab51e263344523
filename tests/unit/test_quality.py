"""The quality report: one suite built from the schema, run on the valid frame by great-expectations (with
its Data Docs) or, for small frames, as polars expressions giving the same verdicts."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from snapmap_pipeline.core.quality import build_expectations, expectation_specs, run_quality
from snapmap_pipeline.core.schema import EntitySchema


@pytest.fixture(scope="module")
def schema() -> EntitySchema:
    return EntitySchema.model_validate(
        {
            "entity": "thing",
            "title": "Thing",
            "csv_file": "THING-MAIN",
            "xml": {"root": "EF_Thing_List", "record": "EF_Thing"},
            "key": "ID",
            "operations": {"ingest": {"xml_required": ["ID", "NAME"]}},
            "fields": [
                {"name": "ID", "xml": "id"},
                {"name": "NAME", "xml": "name", "max_length": 5},
                {"name": "KIND", "xml": "kind", "type": "enum", "values": ["a", "b"]},
                {"name": "DAY", "xml": "day", "type": "date"},
                {"name": "ON", "xml": "on", "type": "boolean"},
            ],
        }
    )


def _frame(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "_row": list(range(2, n + 2)),
            "ID": [f"k{i}" for i in range(n)],
            "NAME": ["nm"] * n,
            "KIND": ["a", "b"] * (n // 2),
            "DAY": ["2024-01-31"] * n,
            "ON": ["true"] * n,
        }
    )


def test_a_good_frame_passes_and_writes_data_docs(
    schema: EntitySchema, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run_quality(_frame(10), schema, "ingest", tmp_path / "quality", engine="great_expectations")
    assert out["engine"] == "great_expectations"
    assert out["success"] is True
    assert out["failed"] == []
    assert (
        out["evaluated"] == out["successful"] == len(build_expectations(schema, "ingest", _frame(2).columns))
    )
    assert out["sampled"] is False and out["sample_rows"] == 10
    index = Path(out["docs_path"])
    assert index == tmp_path / "quality" / "index.html"
    assert "thing_ingest" in index.read_text(encoding="utf-8")
    assert (tmp_path / "quality" / "validations").is_dir()  # GX's own site, not our one-page report
    assert "Calculating Metrics" not in capsys.readouterr().err  # no tqdm bars


def test_a_small_frame_is_checked_by_polars_and_its_report_says_so(
    schema: EntitySchema, tmp_path: Path
) -> None:
    out = run_quality(_frame(10), schema, "ingest", tmp_path / "quality", gx_min_rows=11)
    assert out["engine"] == "polars"
    assert out["success"] is True and out["failed"] == []
    assert (
        out["evaluated"] == out["successful"] == len(expectation_specs(schema, "ingest", _frame(2).columns))
    )
    page = Path(out["docs_path"]).read_text(encoding="utf-8")
    assert "thing_ingest" in page and "polars" in page and "10 rows" in page
    assert "expect_column_values_to_be_unique" in page
    assert run_quality(_frame(10), schema, "ingest", tmp_path / "gx", gx_min_rows=10)["engine"] == (
        "great_expectations"
    )


def _frames() -> dict[str, pl.DataFrame]:
    """Frames that pass and fail each kind of expectation, including nulls, no rows and no columns."""
    s = pl.String
    return {
        "good": _frame(6),
        "nulls and bad forms": pl.DataFrame(
            {
                "ID": ["1", None, None],
                "NAME": [None, "é" * 5, "x"],
                "KIND": [None, "a", "c"],
                "DAY": [None, None, "2024-1-1"],
                "ON": ["TRUE", None, "false"],
            }
        ),
        "duplicates and overlong": pl.DataFrame(
            {"ID": ["1", "1", "2"], "NAME": ["abcdef", "ab", "é" * 6], "DAY": ["2024-01-01x"] * 3}
        ),
        "all null": pl.DataFrame({"ID": [None, None], "NAME": [None, None]}, schema={"ID": s, "NAME": s}),
        "no rows": pl.DataFrame({"ID": [], "NAME": [], "KIND": []}, schema={"ID": s, "NAME": s, "KIND": s}),
        "no columns": pl.DataFrame(),
    }


@pytest.mark.parametrize("case", list(_frames()))
def test_both_engines_give_the_same_verdicts(schema: EntitySchema, tmp_path: Path, case: str) -> None:
    frame = _frames()[case]
    gx = run_quality(frame, schema, "ingest", tmp_path / "gx", engine="great_expectations")
    ours = run_quality(frame, schema, "ingest", tmp_path / "pl", engine="polars")
    keys = ("success", "evaluated", "successful", "sampled", "sample_rows")
    assert {k: ours[k] for k in keys} == {k: gx[k] for k in keys}
    assert sorted(ours["failed"]) == sorted(gx["failed"])


def test_failures_are_named_and_sampling_is_reported(schema: EntitySchema, tmp_path: Path) -> None:
    bad = _frame(10).with_columns(
        pl.when(pl.col("_row") == 2).then(pl.lit("31/01/2024")).otherwise(pl.col("DAY")).alias("DAY"),
        pl.lit("toolong").alias("NAME"),
        pl.lit("z").alias("KIND"),
        pl.lit("k1").alias("ID"),
    )
    out = run_quality(bad, schema, "ingest", tmp_path / "q", sample_rows=4)
    assert out["success"] is False
    assert set(out["failed"]) == {
        "expect_column_values_to_match_regex(DAY)",
        "expect_column_value_lengths_to_be_between(NAME)",
        "expect_column_values_to_be_in_set(KIND)",
        "expect_column_values_to_be_unique(ID)",
    }
    assert out["sampled"] is True and out["sample_rows"] == 4
    assert out["successful"] == out["evaluated"] - len(out["failed"])


def test_a_missing_required_column_fails_the_suite(schema: EntitySchema, tmp_path: Path) -> None:
    out = run_quality(_frame(4).drop("NAME"), schema, "ingest", tmp_path / "q")
    assert "expect_column_to_exist" in " ".join(out["failed"])


def test_background_worker_gives_the_same_report_as_in_process(tmp_path: Path) -> None:
    from snapmap_pipeline.core.quality import BackgroundQuality
    from snapmap_pipeline.core.schema import load_schema
    from tests.unit.synthetic import synthetic_rows

    employee = load_schema("employee")
    frame = synthetic_rows(employee, "ingest", n=6, custom=False)
    here = run_quality(frame, employee, "ingest", tmp_path / "here", sample_rows=4)
    with BackgroundQuality() as bq:
        there = bq.submit(frame, employee, "ingest", tmp_path / "there", sample_rows=4).result(timeout=300)
    assert {k: there[k] for k in ("success", "evaluated", "failed", "sampled", "sample_rows")} == {
        k: here[k] for k in ("success", "evaluated", "failed", "sampled", "sample_rows")
    }
    assert there["sampled"] is True
    assert Path(there["docs_path"]).is_file()
    assert not (tmp_path / "there" / "_sample.parquet").exists()


def test_a_failing_background_report_is_a_snapmap_error_and_the_worker_keeps_serving(
    schema: EntitySchema, tmp_path: Path
) -> None:
    from snapmap_pipeline.core.quality import BackgroundQuality
    from snapmap_pipeline.core.schema import load_schema
    from snapmap_pipeline.errors import SnapMapError

    with BackgroundQuality() as bq:
        # "thing" is not a stored entity: the worker cannot load its schema.
        failing = bq.submit(_frame(4), schema, "ingest", tmp_path / "bad", sample_rows=10)
        with pytest.raises(SnapMapError):
            failing.result(timeout=300)
        employee = load_schema("employee")
        frame = pl.DataFrame({"_row": [2], "EMPLOYEE_ID": ["E1"]})
        ok = bq.submit(frame, employee, "ingest", tmp_path / "ok", sample_rows=10).result(timeout=300)
    assert ok["sample_rows"] == 1
    assert ok["sampled"] is False


def test_background_worker_stops_even_when_sigterm_is_ignored() -> None:
    """Some CI runners start jobs with SIGTERM ignored; spawn passes that on. close() must not hang."""
    import subprocess
    import sys

    code = (
        "import signal, time\n"
        "if __name__ == '__main__':\n"
        "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "    from snapmap_pipeline.core.quality import BackgroundQuality\n"
        "    bq = BackgroundQuality()\n"
        "    time.sleep(3)\n"
        "    bq.close()\n"
        "    print('closed', bq._proc.exitcode is not None)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "closed True" in done.stdout
