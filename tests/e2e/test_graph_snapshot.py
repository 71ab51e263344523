"""The asset graph as data: keys, deps, partitions, checks, jobs, sensors and schedules. Any change to
the graph shows up as a diff of graph_snapshot.json in review (SNAPMAP_UPDATE_SNAPSHOT=1 rewrites it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SNAPSHOT = Path(__file__).with_name("graph_snapshot.json")


def describe(pdef) -> str | None:
    if pdef is None:
        return None
    dims = getattr(pdef, "partitions_defs", None)
    if dims:
        return " x ".join(f"{d.name}={describe(d.partitions_def)}" for d in dims)
    name = getattr(pdef, "name", None)
    return type(pdef).__name__ + (f":{name}" if name else "")


def graph() -> dict:
    from snapmap_pipeline.defs import defs

    g = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(g.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = g.get(key)
        pdef = node.partitions_def
        assets[key.to_user_string()] = {
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
            "partitions": describe(pdef),
            "group": node.group_name,
            "pool": node.pools and sorted(node.pools) or None,
            "backfill": str(node.backfill_policy) if node.backfill_policy else None,
        }
    checks = {}
    for ck in sorted(g.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        spec = g.get_check_spec(ck)
        checks[f"{ck.asset_key.to_user_string()}:{ck.name}"] = {"blocking": spec.blocking}
    return {
        "assets": assets,
        "checks": checks,
        "jobs": sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__")),
        "sensors": sorted(s.name for s in defs.sensors),
        "schedules": sorted(defs.resolve_schedule_def(s.name).name for s in defs.schedules),
    }


def test_graph_matches_snapshot():
    current = graph()
    if os.environ.get("SNAPMAP_UPDATE_SNAPSHOT") == "1" or not SNAPSHOT.exists():
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert current == json.loads(SNAPSHOT.read_text())
