"""Streaming (core/stream.py): the same results as the in-memory path across batch boundaries, and a
5M-row file through a memory cap smaller than the file.

The slow test generates its file once (in chunks, bench/generate.py) under bench/data/ and runs the
pipeline in a child process in its own cgroup v1 memory group (root, as in CI), or under RLIMIT_AS
when no cgroup can be made.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from bench.generate import generate
from snapmap_pipeline.core.export.xml import load_xsd, own_xsd, validate_records
from snapmap_pipeline.core.pipeline import process_bytes
from snapmap_pipeline.core.schema import load_schema
from snapmap_pipeline.core.stream import process_file, process_path
from snapmap_pipeline.errors import InputError
from snapmap_pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DROP_TIME = datetime(2026, 1, 1, tzinfo=UTC)
# Columns whose numbers come from the row index in bench/generate.py: shifted per chunk so ids stay
# unique across chunks (the generator's own duplicate id "E100000" is left as it is).
_NUMBERED = (
    "Employee ID",
    "Work Email",
    "Personal Email",
    "Phone",
    "Manager ID",
    "Manager Email",
    "User ID",
    "LinkedIn URL",
)


def write_generated(path: Path, rows: int, *, chunk: int = 500_000, seed: int = 42) -> Path:
    """bench/generate.py's data written `chunk` rows at a time (flat memory), ids unique file-wide."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with partial.open("wb") as fh:
        for k, start in enumerate(range(0, rows, chunk)):
            df = generate(min(chunk, rows - start), seed + k)
            if start:
                parts = r"^(.*?)(\d+)(\D*)$"
                df = df.with_columns(
                    pl.when(pl.col(c) == "E100000")
                    .then(pl.col(c))
                    .otherwise(
                        pl.concat_str(
                            pl.col(c).str.extract(parts, 1),
                            (pl.col(c).str.extract(parts, 2).cast(pl.Int64) + start).cast(pl.String),
                            pl.col(c).str.extract(parts, 3),
                        )
                    )
                    .alias(c)
                    for c in _NUMBERED
                )
            df.write_csv(fh, include_header=start == 0)
    partial.rename(path)
    return path


# -- same answers as process_bytes ----------------------------------------------------------------------
def test_streamed_file_matches_in_memory_path(tmp_path: Path) -> None:
    df = generate(50_000, 7)
    # Every row gets a skill so the Eightfold CSV (which requires one) is written and compared too.
    df = df.with_columns(pl.col("Skills").fill_null("Python").replace("", "Python"))
    # Duplicates far apart: rows in the last batches repeat keys and emails of the first ones.
    df = df.with_columns(
        pl.when(pl.int_range(pl.len()) % 4999 == 4998)
        .then(pl.lit("E100003"))
        .otherwise(pl.col("Employee ID"))
        .alias("Employee ID"),
        pl.when(pl.int_range(pl.len()) % 6007 == 6006)
        .then(pl.lit("user5@acme-corp.com"))
        .otherwise(pl.col("Work Email"))
        .alias("Work Email"),
    )
    src = tmp_path / "workers.csv"
    df.write_csv(src)

    whole = process_bytes(
        src.read_bytes(), src.name, out_dir=tmp_path / "a", drop_time=DROP_TIME, quality=False
    )
    streamed = process_path(
        src, out_dir=tmp_path / "b", drop_time=DROP_TIME, chunk_rows=7_000, quality=False, map_in_child=False
    )

    assert streamed.outputs["streamed"]["batches"] > 5
    assert streamed.rows_in == whole.rows_in == 50_000
    assert streamed.rows_valid + streamed.rows_quarantined == streamed.rows_in
    assert (streamed.rows_valid, streamed.rows_quarantined) == (whole.rows_valid, whole.rows_quarantined)
    for name in ("employee.xml", "EMPLOYEE-MAIN.csv", "quarantine.csv"):
        assert (tmp_path / "b" / name).read_bytes() == (tmp_path / "a" / name).read_bytes(), name
    assert streamed.outputs["xsd_errors"] == []

    def norm(issues: list) -> list[str]:
        return sorted(json.dumps(i, sort_keys=True) for i in issues)

    assert norm(streamed.issues) == norm(whole.issues)
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["rows_in"] == report["rows_valid"] + report["rows_quarantined"]


@pytest.mark.parametrize("sample_rows", [1_500, 50_000])  # complete after a few blocks / only at the end
def test_streamed_quality_report_matches_in_memory(tmp_path: Path, sample_rows: int) -> None:
    """The streamed report starts in a thread once its sample is complete (beside the rest of the pass),
    or at the end for a file with fewer valid rows: either way it checks the same first valid rows as
    the in-memory path and says whether it sampled."""
    src = tmp_path / "workers.csv"
    generate(6_000, 11).write_csv(src)
    settings = Settings(quality_sample_rows=sample_rows, quality_gx_min_rows=10**9)  # polars engine: fast
    kw = {"drop_time": DROP_TIME, "settings": settings}
    whole = process_bytes(src.read_bytes(), src.name, out_dir=tmp_path / "a", **kw)
    streamed = process_path(src, out_dir=tmp_path / "b", chunk_rows=1_000, map_in_child=False, **kw)

    assert streamed.outputs["streamed"]["batches"] > 3
    quality, expected = streamed.outputs["quality"], whole.outputs["quality"]
    assert quality["sampled"] is (streamed.rows_valid > sample_rows) is expected["sampled"]
    assert quality["sample_rows"] == min(sample_rows, streamed.rows_valid) == expected["sample_rows"]
    for key in ("success", "evaluated", "successful", "failed", "engine"):
        assert quality[key] == expected[key], key
    assert (tmp_path / "b" / "quality" / "index.html").is_file()


def test_day_first_evidence_late_in_the_file_decides_every_batch(tmp_path: Path) -> None:
    # Only the last row shows the order (31/01); the earlier "02/03/2024" values are read day-first too.
    lines = ["Employee ID,First Name,Last Name,Work Email,Hire Date"]
    lines += [f"E{i},Ann,Lee,a{i}@acme-corp.com,02/03/2024" for i in range(12_000)]
    lines.append("X1,Bob,Lee,b@acme-corp.com,31/01/2024")
    src = tmp_path / "late.csv"
    src.write_text("\n".join(lines) + "\n", encoding="cp1252")

    whole = process_bytes(
        src.read_bytes(), src.name, out_dir=tmp_path / "a", drop_time=DROP_TIME, quality=False
    )
    streamed = process_path(src, out_dir=tmp_path / "b", drop_time=DROP_TIME, chunk_rows=500, quality=False)

    assert streamed.outputs["streamed"]["batches"] > 3
    assert streamed.rows_quarantined == whole.rows_quarantined == 0
    assert (tmp_path / "b" / "employee.xml").read_bytes() == (tmp_path / "a" / "employee.xml").read_bytes()
    assert "2024-03-02" in (tmp_path / "b" / "employee.xml").read_text(encoding="utf-8")


def test_legacy_encoding_is_transcoded_and_small_files_stay_in_memory(tmp_path: Path) -> None:
    src = tmp_path / "legacy.csv"
    rows = ["Employee ID,First Name,Last Name,Work Email"]
    rows += [f"E{i},Zoë,Müller,z{i}@acme-corp.com" for i in range(6_000)]
    src.write_bytes(("\n".join(rows) + "\n").encode("cp1252"))

    streamed = process_file(
        src, out_dir=tmp_path / "b", drop_time=DROP_TIME, quality=False, stream_above=0, chunk_rows=300
    )
    whole = process_file(src, out_dir=tmp_path / "a", drop_time=DROP_TIME, quality=False)

    assert "streamed" in streamed.outputs and "streamed" not in whole.outputs
    assert streamed.read["encoding"] == whole.read["encoding"] == "cp1252"
    assert (tmp_path / "b" / "employee.xml").read_bytes() == (tmp_path / "a" / "employee.xml").read_bytes()
    assert "Müller" in (tmp_path / "b" / "employee.xml").read_text(encoding="utf-8")


def test_a_broken_row_late_in_the_file_fails_the_run_and_leaves_no_outputs(tmp_path: Path) -> None:
    """Nor a quality report: it starts beside the pass once its sample is complete (here after two
    blocks), and a failed run takes it away with the feeds."""
    # Pass 1 reads a few columns only; the extra cell is found by pass 2 after outputs were started.
    # Past the 4 MB prefix that decides the layout (which would widen the frame for it otherwise).
    note = "x" * 500
    lines = ["Employee ID,First Name,Last Name,Work Email,Hire Date,Notes"]
    lines += [f"E{i},Ann,Lee,a{i}@acme-corp.com,2024-03-02,{note}" for i in range(9_000)]
    lines.append(f"E9000,Bob,Lee,b@acme-corp.com,2024-03-02,{note},surplus")
    src = tmp_path / "ragged.csv"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"

    with pytest.raises(InputError) as caught:
        process_path(
            src,
            out_dir=out,
            drop_time=DROP_TIME,
            chunk_rows=1_000,
            map_in_child=False,
            settings=Settings(quality_sample_rows=2_000, quality_gx_min_rows=10**9),
        )

    assert caught.value.code == "ragged_rows"
    assert sorted(p.name for p in out.iterdir()) == []  # no feed, no .part file, no report


def test_xsd_errors_of_streamed_chunks_name_the_line_and_hide_the_value(tmp_path: Path) -> None:
    schema = load_schema("employee")
    good = (
        "<EF_Employee><employee_id>E{0}</employee_id><first_name>Ann</first_name><last_name>Lee</last_name>"
        "<email_list><email>a{0}@acme-corp.com</email></email_list>"
        "<last_activity_ts>2024-01-01T00:00:00</last_activity_ts><hiring_date>2024-01-0{1}</hiring_date>"
        "</EF_Employee>"
    )
    lines = [good.format(i, 1 + i % 9) for i in range(40)]
    lines[25] = lines[25].replace("<hiring_date>2024-01-0", "<hiring_date>31/01/202")
    records = ("\n".join(lines) + "\n").encode()
    xsd = load_xsd(own_xsd("employee", "ingest"))

    assert validate_records(records.replace(b"31/01/202", b"2024-01-0"), xsd, schema.xml.root) == []
    errors = validate_records(
        records, xsd, schema.xml.root, record=schema.xml.record, piece_bytes=500, first_line=3
    )
    assert len(errors) == 1 and errors[0].startswith("line 28: ")  # record 26, after 2 header lines
    assert "31/01" not in errors[0] and "hiring_date" in errors[0]


def test_large_files_stream_by_setting(tmp_path: Path) -> None:
    src = tmp_path / "w.csv"
    src.write_text(
        "Employee ID,First Name,Last Name,Work Email\n"
        + "".join(f"E{i},Ann,Lee,a{i}@acme-corp.com\n" for i in range(2_000))
    )
    small = Settings(stream_above_bytes=src.stat().st_size)
    large = Settings(stream_above_bytes=src.stat().st_size - 1)

    kept = process_file(src, out_dir=tmp_path / "a", drop_time=DROP_TIME, quality=False, settings=small)
    streamed = process_file(src, out_dir=tmp_path / "b", drop_time=DROP_TIME, quality=False, settings=large)

    assert "streamed" not in kept.outputs and "streamed" in streamed.outputs
    assert (tmp_path / "a" / "employee.xml").read_bytes() == (tmp_path / "b" / "employee.xml").read_bytes()


# -- larger than memory ---------------------------------------------------------------------------------
BIG_ROWS = 5_000_000
CAP_BYTES = 1200 * 1024 * 1024
# RLIMIT_AS counts reserved address space (polars/jemalloc and thread stacks reserve far more than they
# touch), so that fallback needs a looser cap; the cgroup caps what is really used.
CAP_AS_BYTES = 4 * 1024 * 1024 * 1024

_CHILD = """
import json, resource, sys, time
from datetime import UTC, datetime
from pathlib import Path
from snapmap_pipeline.core.stream import process_path
t = time.perf_counter()
r = process_path(Path(sys.argv[1]), out_dir=Path(sys.argv[2]), drop_time=datetime(2026, 1, 1, tzinfo=UTC))
own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print("@@" + json.dumps({"rows_in": r.rows_in, "valid": r.rows_valid, "quarantined": r.rows_quarantined,
      "seconds": time.perf_counter() - t, "xsd_errors": len(r.outputs["xsd_errors"]),
      "quality_sampled": r.outputs["quality"]["sampled"], "batches": r.outputs["streamed"]["batches"],
      "maxrss_bytes": own.ru_maxrss * 1024, "mapping_process_maxrss_bytes": kids.ru_maxrss * 1024,
      "cpu_seconds": own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime}))
"""


def _memory_cgroup() -> Path | None:
    """A fresh cgroup v1 memory group under this process's own (so it nests in any parent's limits)."""
    base = Path("/sys/fs/cgroup/memory")
    if not base.is_dir() or os.geteuid() != 0:
        return None
    own = next(
        (
            line.split(":", 2)[2].strip()
            for line in Path("/proc/self/cgroup").read_text().splitlines()
            if line.split(":", 2)[1] == "memory"
        ),
        "/",
    )
    group = base / own.lstrip("/") / f"snapmap-stream-{os.getpid()}"
    try:
        group.mkdir(exist_ok=True)
        (group / "memory.limit_in_bytes").write_text(str(CAP_BYTES))
        swap = group / "memory.memsw.limit_in_bytes"
        if swap.exists():
            swap.write_text(str(CAP_BYTES))  # no escaping the cap into swap
    except OSError:
        return None
    return group


def _run_capped(args: list[str]) -> tuple[int, str, dict]:
    group = _memory_cgroup()
    if group is not None:

        def limit() -> None:
            (group / "tasks").write_text(str(os.getpid()))
    else:

        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (CAP_AS_BYTES, CAP_AS_BYTES))

    # The size guard is configurable; a deployment that takes 5M-row snapshots raises it.
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "SNAPMAP_MAX_FILE_BYTES": str(8 << 30),
    }
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, preexec_fn=limit)
    out, err = proc.communicate()
    facts: dict = {"wall_seconds": time.perf_counter() - started, "cgroup": group is not None}
    facts["cap_bytes"] = CAP_BYTES if group is not None else CAP_AS_BYTES
    if group is not None:
        facts["cgroup_max_usage_bytes"] = int((group / "memory.max_usage_in_bytes").read_text())
        oom = (group / "memory.oom_control").read_text()
        facts["oom_kills"] = int(
            next((x.split()[1] for x in oom.splitlines() if x.startswith("oom_kill ")), 0)
        )
        group.rmdir()
    return proc.returncode, out.decode() + err.decode()[-3000:], facts


@pytest.mark.slow
def test_five_million_rows_under_a_cap_smaller_than_the_file(tmp_path: Path) -> None:
    src = write_generated(ROOT / "bench" / "data" / f"streaming_employees_{BIG_ROWS}.csv", BIG_ROWS)
    assert src.stat().st_size > CAP_BYTES  # larger than the memory it may use

    code, output, facts = _run_capped([sys.executable, "-c", _CHILD, str(src), str(tmp_path / "out")])

    assert code == 0, output[-3000:]
    result = json.loads(output.split("@@", 1)[1].splitlines()[0])
    sys.stderr.write(f"\nstreaming 5M: {json.dumps({**result, **facts})}\n")
    assert result["rows_in"] == BIG_ROWS
    assert result["valid"] + result["quarantined"] == BIG_ROWS
    assert result["xsd_errors"] == 0 and result["quality_sampled"] is True
    # Peak resident memory of the pipeline process and of its short-lived mapping process (the model).
    assert result["maxrss_bytes"] < facts["cap_bytes"]
    assert result["mapping_process_maxrss_bytes"] < facts["cap_bytes"]
    assert facts.get("oom_kills", 0) == 0


@pytest.mark.parametrize(
    ("entity", "sample"),
    [
        ("planned_event", "planned_event/PLANNED-EVENT-MAIN.csv"),  # group_id from the tenant's parameters
        ("demand", "demand/DEMAND-MAIN-sample.csv"),  # is_open derived by the SQL model
        ("role", "role/ROLE-MAIN.csv"),  # associated tags are a companion sheet: never streamed
    ],
)
def test_streamed_records_are_completed_like_in_memory(
    tmp_path: Path, reference: Path, entity: str, sample: str
) -> None:
    import shutil

    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    (config / "tenants" / "acme.yaml").write_text(f"entity: {entity}\nparameters:\n  group_id: grp-7\n")
    settings = Settings(config_dir=config, artifacts_root=str(tmp_path / "artifacts"))
    base = pl.read_csv(reference / "csv_samples" / sample, infer_schema=False)
    key = next(c for c in base.columns if c.upper() == load_schema(entity).key)
    big = pl.concat([base] * 2_000).with_columns(
        (pl.lit("K") + pl.int_range(pl.len()).cast(pl.String)).alias(key)
    )
    src = tmp_path / f"{entity}.csv"
    big.write_csv(src)

    kw = {"tenant": "acme", "drop_time": DROP_TIME, "quality": False, "settings": settings}
    whole = process_bytes(src.read_bytes(), src.name, out_dir=tmp_path / "a", **kw)
    streamed = process_path(src, out_dir=tmp_path / "b", chunk_rows=1_500, map_in_child=False, **kw)

    assert streamed.outputs["streamed"]["batches"] > 1
    assert (streamed.rows_valid, streamed.rows_quarantined) == (whole.rows_valid, whole.rows_quarantined)
    assert streamed.rows_valid + streamed.rows_quarantined == streamed.rows_in == big.height
    for name in (f"{entity}.xml", "quarantine.csv"):
        assert (tmp_path / "b" / name).read_bytes() == (tmp_path / "a" / name).read_bytes(), name
    assert streamed.outputs["xsd_errors"] == []
    eightfold = reference / "xsd" / load_schema(entity).operation("ingest").xsd
    from lxml import etree

    xml = etree.parse(str(tmp_path / "b" / f"{entity}.xml"))
    schema = etree.XMLSchema(etree.parse(str(eightfold)))
    assert schema.validate(xml), schema.error_log.last_error
    if entity == "role":  # no tags came with it: every record waits in quarantine, none goes out invalid
        assert streamed.rows_valid == 0
    else:
        assert streamed.rows_valid > 0
