"""A large drop through the Dagster assets, streamed (core/stream.py) as the CLI streams it: the same
asset graph and checks, the same feeds as the in-memory path for the same file, and no full frame ever
stored by the IO manager."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from bench.generate import generate
from snapmap_pipeline.core.pipeline import content_hash
from snapmap_pipeline.run_local import execute_request

pytestmark = pytest.mark.e2e

ROWS = 30_000  # about 10 MB: two to three times the 4 MB prefix the mapping is decided from
DROPPED_AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC).isoformat()


def _tags(name: str, content: bytes) -> dict[str, str]:
    return {
        "snapmap/source": "local",
        "snapmap/path": name,
        "snapmap/tenant": name.split("/")[0],
        "snapmap/hash": content_hash(content),
        "snapmap/dropped_at": DROPPED_AT,
    }


def _request(env, key: str, name: str, content: bytes) -> dg.ExecuteInProcessResult:
    env.instance.add_dynamic_partitions("drops", [key])
    return execute_request(
        env.instance, env.defs, dg.RunRequest(partition_key=key, tags=_tags(name, content))
    )


def _meta(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    [mat] = [
        e.event_specific_data.materialization
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == asset
    ]
    return {k: v.value for k, v in mat.metadata.items()}


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in (ev.event_specific_data for ev in result.all_events) if _is_check(e)}


def _is_check(data: object) -> bool:
    return isinstance(data, dg.AssetCheckEvaluation)


def _stored_rows(artifacts: Path, asset: str, key: str) -> int:
    return pl.read_parquet(artifacts / "frames" / asset / f"{key}.parquet").height


def test_a_large_drop_streams_through_the_same_assets_with_the_same_feeds(dagster_env, monkeypatch):
    df = generate(ROWS, 11)
    # Every row gets a skill so the Eightfold CSV (which requires one) is written and compared too.
    df = df.with_columns(pl.col("Skills").fill_null("Python").replace("", "Python"))
    path = dagster_env.drop("acme/workers.csv", df.write_csv())
    data = path.read_bytes()
    monkeypatch.setenv("SNAPMAP_QUALITY_SAMPLE_ROWS", "5000")

    # The in-memory path: the file is below the threshold.
    monkeypatch.setenv("SNAPMAP_STREAM_ABOVE_BYTES", str(len(data) + 1))
    dagster_env.rebuild()
    whole = _request(dagster_env, "inmem", "acme/workers.csv", data)

    # The same file streamed: the threshold is below it.
    monkeypatch.setenv("SNAPMAP_STREAM_ABOVE_BYTES", str(1024 * 1024))
    dagster_env.rebuild()
    streamed = _request(dagster_env, "streamed", "acme/workers.csv", data)
    assert whole.success and streamed.success

    assert _meta(streamed, "raw_upload")["streamed"] is True
    assert _meta(whole, "raw_upload")["streamed"] is False
    # The same graph materialised, every blocking check run and passed on both paths.
    mats = {e.asset_key.to_user_string() for e in streamed.get_asset_materialization_events()}
    assert mats == {e.asset_key.to_user_string() for e in whole.get_asset_materialization_events()}
    for result in (whole, streamed):
        checks = _checks(result)
        assert {"mapping_reviewed", "contract", "row_conservation", "xml_valid"} <= set(checks)
        assert all(c.passed for c in checks.values()), {n: c.passed for n, c in checks.items()}

    # Row conservation, from the whole file's counts, equal to the in-memory path's.
    figures = ("rows in", "rows valid", "rows quarantined")
    v_streamed, v_whole = _meta(streamed, "validated_frame"), _meta(whole, "validated_frame")
    assert [v_streamed[f] for f in figures] == [v_whole[f] for f in figures]
    assert v_streamed["rows in"] == ROWS == v_streamed["rows valid"] + v_streamed["rows quarantined"]
    assert v_streamed["rows quarantined"] > 0  # the generator's bad rows
    conservation = _checks(streamed)["row_conservation"].metadata
    assert conservation["rows in"].value == ROWS
    assert conservation["records in the XML"].value == v_streamed["rows valid"]
    assert _meta(streamed, "quarantine")["rules"] == _meta(whole, "quarantine")["rules"]

    # The same feeds, byte for byte: XML records, Eightfold CSV rows, quarantine rows with reasons.
    out = dagster_env.artifacts / "drops"
    for name in ("employee.xml", "EMPLOYEE-MAIN.csv", "quarantine.csv"):
        a, b = out / "inmem" / "out" / name, out / "streamed" / "out" / name
        assert a.read_bytes() == b.read_bytes(), name
    assert _meta(streamed, "eightfold_xml")["records"] == _meta(whole, "eightfold_xml")["records"]
    assert Path(_meta(streamed, "eightfold_xml")["xml"]) == out / "streamed" / "out" / "employee.xml"

    # The IO manager never stored the whole file as a frame: a prefix and heads only.
    assert _stored_rows(dagster_env.artifacts, "parsed_table", "inmem") == ROWS
    assert _stored_rows(dagster_env.artifacts, "parsed_table", "streamed") < ROWS / 2
    assert _stored_rows(dagster_env.artifacts, "validated_frame", "streamed") == 5000
    assert _stored_rows(dagster_env.artifacts, "quarantine", "streamed") <= 5000
    assert _meta(streamed, "parsed_table")["streamed"] is True
    quality = _checks(streamed)["quality_suite"].metadata  # on those first rows, and says so
    assert quality["sampled"].value is True and quality["rows in sample"].value == 5000
    # The upload was stored whole, block by block, under the sensor's hash.
    assert (out / "streamed" / "upload" / "workers.csv").read_bytes() == data


def test_a_streamed_drop_is_still_refused_above_the_size_limit(dagster_env, monkeypatch):
    content = generate(3_000, 5).write_csv()
    path = dagster_env.drop("acme/workers.csv", content)
    monkeypatch.setenv("SNAPMAP_STREAM_ABOVE_BYTES", "1024")
    monkeypatch.setenv("SNAPMAP_MAX_FILE_BYTES", str(path.stat().st_size - 1))
    dagster_env.rebuild()
    env = dagster_env
    env.instance.add_dynamic_partitions("drops", ["big"])
    tags = {"snapmap/source": "local", "snapmap/path": "acme/workers.csv", "snapmap/tenant": "acme"}
    result = execute_request(env.instance, env.defs, dg.RunRequest(partition_key="big", tags=tags))
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "raw_upload"
    assert "file_too_large" in failure.step_failure_data.error.message
    assert not (env.artifacts / "drops" / "big" / "upload").exists() or not any(
        (env.artifacts / "drops" / "big" / "upload").iterdir()
    )


def test_a_streamed_drop_still_stops_for_review(dagster_env, monkeypatch):
    cryptic = b"EMP_NO,FNM,LNM,EML_ADDR,JC\n" + b"".join(
        b"H-%d,Nelson,Bighetti,n%d@hooli.com,ENG2\n" % (i, i) for i in range(200)
    )
    (dagster_env.config / "tenants" / "hooli.yaml").write_text("entity: employee\n")
    dagster_env.drop("hooli/legacy.csv", cryptic)
    monkeypatch.setenv("SNAPMAP_STREAM_ABOVE_BYTES", "1024")
    dagster_env.rebuild()
    result = _request(dagster_env, "legacy", "hooli/legacy.csv", cryptic)
    assert not result.success
    assert _meta(result, "raw_upload")["streamed"] is True
    assert _checks(result)["mapping_reviewed"].passed is False
    mats = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "field_mapping" in mats and not mats & {"validated_frame", "eightfold_xml", "delivery"}
    assert not (dagster_env.artifacts / "drops" / "legacy" / "out").exists()  # nothing went out


def test_a_large_drop_with_companion_sheets_beside_it_goes_the_in_memory_way(dagster_env, monkeypatch):
    roles = b"EXTERNAL_ID,TITLE\n" + b"".join(b"R%d,Developer\n" % i for i in range(100))
    tags = b"EXTERNAL_ID,JOB_CODE\n" + b"".join(b"R%d,DEV\n" % i for i in range(100))
    (dagster_env.config / "tenants" / "acme.yaml").write_text("entity: role\n")
    dagster_env.drop("acme/ROLE-MAIN.csv", roles)
    dagster_env.drop("acme/ROLE-ASSOCIATED-TAGS.csv", tags)
    monkeypatch.setenv("SNAPMAP_STREAM_ABOVE_BYTES", "256")  # both files are above it
    dagster_env.rebuild()
    result = _request(dagster_env, "roles", "acme/ROLE-MAIN.csv", roles)
    assert result.success
    assert _meta(result, "raw_upload")["streamed"] is False  # streaming takes MAIN files alone
    assert (_meta(result, "validated_frame")["rows valid"], _meta(result, "quarantine")["rows"]) == (100, 0)
    xml = (dagster_env.artifacts / "drops" / "roles" / "out" / "role.xml").read_text(encoding="utf-8")
    assert xml.count("<associated_tags>") == 100


def test_blocks_gathered_over_many_batches_match_the_streamed_report(tmp_path):
    """What validated_frame hands process_path (the prefix's reviewed mapping, a per-block collector)
    gives the feeds process_path gives alone, with the checks' counts equal to its report."""
    import importlib

    from snapmap_pipeline.core import pipeline as core
    from snapmap_pipeline.core.schema import load_schema
    from snapmap_pipeline.core.stream import PREFIX_READ_BYTES, process_path, read_prefix

    checks = importlib.import_module("snapmap_pipeline.defs.drops.checks")
    src = tmp_path / "workers.csv"
    generate(20_000, 3).write_csv(src)
    head = src.read_bytes()[:PREFIX_READ_BYTES]
    df, _ = read_prefix(head, src.name, complete=len(head) < PREFIX_READ_BYTES)
    guess, profiles = core.infer_step(df, src.name)
    mapping = core.map_step(df, profiles, load_schema(guess.entity), filename=src.name)

    blocks = checks.StreamedBlocks(guess.entity, "ingest", keep_rows=1_500)
    kw = {"chunk_rows": 2_000, "quality": False, "drop_time": datetime.fromisoformat(DROPPED_AT)}
    given = process_path(
        src, out_dir=tmp_path / "given", entity=guess.entity, mapping=mapping, on_batch=blocks, **kw
    )
    alone = process_path(src, out_dir=tmp_path / "alone", map_in_child=False, **kw)

    assert given.outputs["streamed"]["batches"] >= 8
    for name in ("employee.xml", "quarantine.csv"):
        assert (tmp_path / "given" / name).read_bytes() == (tmp_path / "alone" / name).read_bytes()
    assert (given.rows_valid, given.rows_quarantined) == (alone.rows_valid, alone.rows_quarantined)
    assert (blocks.rows_valid, blocks.rows_quarantined) == (given.rows_valid, given.rows_quarantined)
    assert blocks.both == 0 and blocks.contract_result().passed
    assert blocks.conservation_result(given.rows_in, given.outputs["xml_report"]["rows"]).passed
    assert not blocks.conservation_result(given.rows_in + 1, None).passed  # a lost row is seen
    valid, quarantine = blocks.heads()
    assert valid.height == 1_500 and quarantine.height <= 1_500
    quarantined = pl.read_csv(tmp_path / "given" / "quarantine.csv", infer_schema=False)
    assert sum(r["len"] for r in blocks.rule_counts()) == quarantined.height


def test_the_prefix_of_a_utf16_file_reads_as_its_utf8_transcode(tmp_path):
    from snapmap_pipeline.core.stream import PREFIX_READ_BYTES, read_prefix

    text = generate(30_000, 9).write_csv()  # ~10 MB as UTF-8: the prefix is cut at a record
    utf16 = "\ufeff".encode("utf-16-le") + text.encode("utf-16-le")
    df16, report16 = read_prefix(utf16[:PREFIX_READ_BYTES], "w.csv", complete=False)
    utf8 = text.encode("utf-8")
    df8, _ = read_prefix(utf8[:PREFIX_READ_BYTES], "w.csv", complete=False)
    assert report16.encoding == "utf-16-le"
    assert df16.equals(df8) and 1_000 < df8.height < 30_000
