"""Mapping memory in LanceDB and tenant overrides: accept then map again gives `memory`; an override
always wins; two processes writing at once leave a readable, complete store."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import pytest
import yaml

from snapmap_pipeline.core.mapping import (
    ColumnMapping,
    Mapping,
    MappingMemory,
    custom_name,
    fingerprint,
    load_overrides,
    map_columns,
    set_override,
)
from snapmap_pipeline.core.schema import load_schema
from snapmap_pipeline.errors import ConfigError
from snapmap_pipeline.settings import Settings


@pytest.fixture()
def settings(artifacts: Path, tmp_path: Path) -> Settings:
    config = tmp_path / "config"
    (config / "tenants").mkdir(parents=True)
    real = Settings().config_dir / "glossary"
    (config / "glossary").symlink_to(real)
    return Settings(artifacts_root=str(artifacts), config_dir=config)


@pytest.fixture(scope="module")
def employee():
    return load_schema("employee")


def test_accept_then_map_again_comes_from_memory(employee, settings):
    cols = ["Supv Code", "Emp Ref", "Given", "Family"]
    memory = MappingMemory(settings.lancedb_path)
    reviewed = Mapping(
        "employee",
        "acme",
        [
            ColumnMapping("Supv Code", "MANAGER_ID", 1.0, "override"),
            ColumnMapping("Emp Ref", "EMPLOYEE_ID", 1.0, "override"),
            ColumnMapping("Given", "FIRST_NAME", 1.0, "override"),
            ColumnMapping("Family", None, 0.0, "none"),
        ],
        fingerprint(cols),
    )
    assert memory.remember(reviewed, tenant="acme", confirmed_by="test") == 3
    again = map_columns(cols, None, employee, tenant="acme", settings=settings, memory=memory)
    by = {i.source: i for i in again.items}
    assert (by["Supv Code"].target, by["Supv Code"].method) == ("MANAGER_ID", "memory")
    assert (by["Emp Ref"].target, by["Emp Ref"].method) == ("EMPLOYEE_ID", "memory")
    # the default store under the artifacts root is found without passing it
    implicit = map_columns(cols, None, employee, tenant="acme", settings=settings)
    assert {i.source: i.method for i in implicit.items}["Supv Code"] == "memory"


def test_memory_near_identical_headers_and_other_tenants(employee, settings):
    memory = MappingMemory(settings.lancedb_path)
    m = Mapping("employee", "acme", [ColumnMapping("Supervisor Code", "MANAGER_ID", 1.0, "override")], "fp")
    memory.remember(m, tenant="acme", confirmed_by="test")
    same = memory.lookup(["Supervisor  Code.", "Supervisor Codes"], "employee", "acme")
    assert same["Supervisor Codes"][0] == "MANAGER_ID" and same["Supervisor Codes"][2] == "memory"
    other = memory.lookup(["Supervisor Code"], "employee", "globex")
    assert other["Supervisor Code"][0] == "MANAGER_ID"
    assert other["Supervisor Code"][1] < same["Supervisor  Code."][1]  # another tenant is a weaker signal
    assert memory.lookup(["Supervisor Code"], "candidate", "acme") == {}


def test_latest_confirmation_wins(settings):
    memory = MappingMemory(settings.lancedb_path)
    for target in ("MANAGER_FULLNAME", "MANAGER_ID"):
        memory.remember(
            Mapping("employee", "acme", [ColumnMapping("Boss", target, 1.0, "override")], "fp"),
            tenant="acme",
            confirmed_by="test",
        )
    assert memory.lookup(["Boss"], "employee", "acme")["Boss"][0] == "MANAGER_ID"


def _writer(uri: str, tenant: str, n: int) -> None:
    os.environ["LANCE_LOG"] = "error"
    memory = MappingMemory(uri, vectors=False)  # this test is about commits, not embeddings
    for i in range(n):
        m = Mapping(
            "employee", tenant, [ColumnMapping(f"Header {tenant} {i}", "EMPLOYEE_ID", 1.0, "override")], "fp"
        )
        memory.remember(m, tenant=tenant, confirmed_by="proc")


def test_two_processes_write_at_once(settings):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(settings.lancedb_path, t, 6)) for t in ("t1", "t2")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    rows = MappingMemory(settings.lancedb_path).rows("employee")
    assert len(rows) == 12
    assert {r["tenant"] for r in rows} == {"t1", "t2"}


def test_override_always_wins_and_round_trips(employee, settings):
    path = set_override("acme", "Supv ID", "LAST_NAME", settings)
    assert yaml.safe_load(path.read_text())["columns"] == {"Supv ID": "LAST_NAME"}
    set_override("acme", "Emp Ref", "EMPLOYEE_ID", settings)
    m = map_columns(["Supv ID", "Emp Ref"], None, employee, tenant="acme", settings=settings)
    by = {i.source: i for i in m.items}
    assert (by["Supv ID"].target, by["Supv ID"].method, by["Supv ID"].confidence) == (
        "LAST_NAME",
        "override",
        1.0,
    )
    assert by["Emp Ref"].method == "override"
    assert load_overrides("acme", settings).columns == {"Supv ID": "LAST_NAME", "Emp Ref": "EMPLOYEE_ID"}
    set_override("acme", "Supv ID", None, settings)  # "Header=" on the CLI: ignore it
    o = load_overrides("acme", settings)
    assert "Supv ID" not in o.columns and o.ignore == ["Supv ID"]


def test_ignore_custom_entity_and_date_order(employee, settings):
    (Path(settings.config_dir) / "tenants" / "globex.yaml").write_text(
        yaml.safe_dump(
            {
                "entity": "employee",
                "ignore": ["Work Email"],
                "custom": ["Cost Centre #"],
                "date_order": "dmy",
                "webmail_domains": ["Example.org"],
            }
        )
    )
    o = load_overrides("globex", settings)
    assert (o.entity, o.date_order, o.webmail_domains) == ("employee", "dmy", ["example.org"])
    m = map_columns(["Work Email", "Cost Centre #"], None, employee, tenant="globex", settings=settings)
    by = {i.source: i for i in m.items}
    assert (by["Work Email"].target, by["Work Email"].method) == (None, "ignored")
    assert (by["Cost Centre #"].target, by["Cost Centre #"].method) == (
        "EFCUSTOM_STR_COST_CENTRE_NUMBER",
        "custom",
    )
    assert custom_name("Cost Center") == "EFCUSTOM_STR_COST_CENTER"


def test_bad_override_files_say_what_is_wrong(settings):
    tenants = Path(settings.config_dir) / "tenants"
    (tenants / "bad.yaml").write_text("columns: [not, a, mapping]\n")
    with pytest.raises(ConfigError, match="columns"):
        load_overrides("bad", settings)
    (tenants / "typo.yaml").write_text("colums: {}\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_overrides("typo", settings)
    with pytest.raises(ConfigError, match="tenant name"):
        load_overrides("../etc", settings)
    assert load_overrides("nobody", settings).columns == {}


def test_example_tenant_file_is_valid():
    o = load_overrides("example")
    assert o.entity and o.columns and o.date_order in ("dmy", "mdy")


def test_field_index_read_back_from_lancedb_alone(tmp_path: Path) -> None:
    """As on S3, where there is no local copy of the field index: the LanceDB table alone gives the same
    vectors, the "no field" sink rows included."""
    import numpy as np

    from snapmap_pipeline.core.mapping import semantic

    schema = load_schema("course")
    uri = str(tmp_path / "lancedb")
    built = semantic.field_vectors(schema, uri)
    assert built is not None
    semantic._FIELD_CACHE.clear()
    copy = semantic._sidecar(uri, semantic._table_name(schema))
    assert copy is not None and copy.exists()
    copy.unlink()
    again = semantic.field_vectors(schema, uri)
    assert again is not None
    assert np.array_equal(again.text_field, built.text_field)
    assert np.allclose(again.matrix, built.matrix)
    assert copy.exists(), "the copy is written back for the next process"
