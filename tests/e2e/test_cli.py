"""The CLI contracts from DESIGN.md, run as a real subprocess (what scripts depend on)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def snapmap(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "snapmap_pipeline.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=full_env,
        timeout=300,
    )


def test_entities_json_lists_all_sixteen() -> None:
    res = snapmap("entities", "--json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert len(rows) == 16
    assert {"entity", "operations", "fields"} <= set(rows[0])
    assert "employee" in {r["entity"] for r in rows}


def test_schema_employee_in_spec_order_with_xml_paths(reference: Path) -> None:
    res = snapmap("schema", "employee", "--json")
    assert res.returncode == 0, res.stderr
    fields = json.loads(res.stdout)
    spec = (reference / "csv_spec.txt").read_text(encoding="utf-8")
    section = spec.split("##### ef_employee_add_csv_schema.xlsx", 1)[1].split("--- sheet EMPLOYEE-MAIN", 1)[1]
    names = []
    for line in section.splitlines()[2:]:
        if line.startswith("--- sheet") or line.startswith("#####"):
            break
        head = line.split(" | ", 1)[0].strip()
        if " | " in line and head.isupper():
            names.append(head)
    assert [f["name"] for f in fields] == names
    by_name = {f["name"]: f for f in fields}
    assert by_name["EMAIL"]["xml_path"] == "email_list/email"
    assert by_name["MANAGER_ID"]["xml_path"] == "manager_userid"


def test_unknown_entity_is_a_one_line_error() -> None:
    res = snapmap("schema", "nosuchentity", "--json")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_unusable_input_exits_2_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "export.csv"
    bad.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n")
    res = snapmap("process", str(bad), "--out", str(tmp_path / "out"))
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert "unsupported_file_type" in res.stderr
    assert not (tmp_path / "out" / "export" / "employee.xml").exists()


def _employee_csv(path: Path, rows: list[str]) -> Path:
    header = "Employee ID,First Name,Last Name,Work Email,Job Title,Hire Date,Manager ID"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_detect_and_map_keep_the_json_contract(tmp_path: Path, artifacts: Path) -> None:
    f = _employee_csv(tmp_path / "workers.csv", ["E1,Ann,Lee,ann.lee@acme.com,Engineer,2020-01-31,"])
    det = snapmap("detect", str(f), "--json", env={"SNAPMAP_ARTIFACTS_ROOT": str(artifacts)})
    assert det.returncode == 0, det.stderr
    d = json.loads(det.stdout)
    assert d["entity"] == "employee" and 0 <= d["confidence"] <= 1
    assert all({"entity", "score"} <= set(c) for c in d["candidates"])

    res = snapmap("map", str(f), "--json", env={"SNAPMAP_ARTIFACTS_ROOT": str(artifacts)})
    assert res.returncode == 0, res.stderr
    m = json.loads(res.stdout)
    assert m["entity"] == "employee"
    assert [r["source"] for r in m["mappings"]] == [
        "Employee ID",
        "First Name",
        "Last Name",
        "Work Email",
        "Job Title",
        "Hire Date",
        "Manager ID",
    ]
    targets = {r["source"]: r["target"] for r in m["mappings"]}
    assert targets["Employee ID"] == "EMPLOYEE_ID"
    assert targets["Work Email"] == "EMAIL"
    assert targets["Hire Date"] == "HIRING_DATE"


def test_process_writes_outputs_and_conserves_rows(tmp_path: Path, artifacts: Path) -> None:
    f = _employee_csv(
        tmp_path / "workers.csv",
        [
            "E1,Ann,Lee,ann.lee@acme.com,Engineer,2020-01-31,",
            "E2,Bob,Roe,bob.roe@acme.com,Manager,2019-02-01,E1",
            "E3,,Poe,cat.poe@acme.com,Analyst,2021-03-01,E1",  # missing first name → quarantine
            "E2,Dup,Key,dup@acme.com,Analyst,2021-03-01,E1",  # duplicate key → quarantine
        ],
    )
    out = tmp_path / "out"
    res = snapmap("process", str(f), "--out", str(out), env={"SNAPMAP_ARTIFACTS_ROOT": str(artifacts)})
    assert res.returncode == 0, res.stderr
    d = out / "workers"
    report = json.loads((d / "report.json").read_text())
    assert {"entity", "rows_in", "rows_valid", "rows_quarantined", "mapping", "issues", "outputs"} <= set(
        report
    )
    assert report["rows_in"] == 4
    assert report["rows_valid"] + report["rows_quarantined"] == report["rows_in"]
    assert report["rows_quarantined"] == 2
    assert (d / "employee.xml").exists()
    quarantine = (d / "quarantine.csv").read_text(encoding="utf-8").splitlines()
    assert quarantine[0].split(",")[-4:] == ["_row", "_rule", "_column", "_message"]
    assert len(quarantine) == 1 + 2
    # No skills in the source: the CSV export is skipped with a reason, the XML still goes out.
    assert not (d / "EMPLOYEE-MAIN.csv").exists() or report["outputs"]["csv"]
    assert any(i.get("rule") == "csv_skipped" for i in report["issues"]) or report["outputs"]["csv"]


def test_uncertain_mapping_blocks_with_exit_3(tmp_path: Path, artifacts: Path) -> None:
    f = tmp_path / "staff.csv"
    f.write_text("Ref,Col A,Col B\nx1,foo,bar\nx2,baz,qux\n", encoding="utf-8")
    res = snapmap(
        "process",
        str(f),
        "--out",
        str(tmp_path / "out"),
        "--entity",
        "employee",
        env={"SNAPMAP_ARTIFACTS_ROOT": str(artifacts)},
    )
    assert res.returncode == 3, res.stderr
    assert "Traceback" not in res.stderr
    report = json.loads((tmp_path / "out" / "staff" / "report.json").read_text())
    assert report["status"] == "blocked" and report["review"]
    assert not (tmp_path / "out" / "staff" / "employee.xml").exists()


def test_large_files_are_streamed_with_the_same_result(tmp_path: Path, artifacts: Path) -> None:
    rows = [f"E{i},Ann{i},Lee,a{i}@acme.com,Engineer,2020-01-31," for i in range(50)] + [
        "E1,Dup,Key,d@acme.com,X,,"
    ]
    f = _employee_csv(tmp_path / "big.csv", rows)
    env = {"SNAPMAP_ARTIFACTS_ROOT": str(artifacts)}
    whole = snapmap("process", str(f), "--out", str(tmp_path / "whole"), env=env)
    streamed = snapmap(
        "process", str(f), "--out", str(tmp_path / "stream"), env={**env, "SNAPMAP_STREAM_ABOVE_BYTES": "100"}
    )
    assert whole.returncode == streamed.returncode == 0, whole.stderr + streamed.stderr
    a = json.loads((tmp_path / "whole" / "big" / "report.json").read_text())
    b = json.loads((tmp_path / "stream" / "big" / "report.json").read_text())
    assert "streamed" in b["outputs"] and "streamed" not in a["outputs"]
    assert (a["rows_in"], a["rows_valid"], a["rows_quarantined"]) == (
        b["rows_in"],
        b["rows_valid"],
        b["rows_quarantined"],
    )
    assert a["rows_quarantined"] == 1
