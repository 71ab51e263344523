"""The mapping memory (LanceDB) on s3:// against moto_server, with only SNAPMAP_S3_ENDPOINT_URL naming the
endpoint (no AWS_ENDPOINT_URL): what production uses when artifacts live on an S3-compatible store."""

from __future__ import annotations

import pytest

from snapmap_pipeline.core.mapping import ColumnMapping, Mapping, MappingMemory, fingerprint
from snapmap_pipeline.settings import get_settings
from tests.integration.conftest import s3_server  # noqa: F401 (real-server fixture)

pytestmark = pytest.mark.integration


def test_memory_round_trips_on_s3_with_the_snapmap_endpoint(s3_server, monkeypatch):  # noqa: F811
    bucket = s3_server.new_bucket()
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("SNAPMAP_S3_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3_server.region)
    monkeypatch.setenv("AWS_REGION", s3_server.region)
    get_settings.cache_clear()
    try:
        cols = ["Supv Code", "Emp Ref"]
        reviewed = Mapping(
            "employee",
            "acme",
            [
                ColumnMapping("Supv Code", "MANAGER_ID", 1.0, "override"),
                ColumnMapping("Emp Ref", "EMPLOYEE_ID", 1.0, "override"),
            ],
            fingerprint(cols),
        )
        uri = f"s3://{bucket}/lancedb"
        assert MappingMemory(uri).remember(reviewed, tenant="acme", confirmed_by="test") == 2
        rows = MappingMemory(uri).rows("employee")  # a second connection reads what the first wrote
        assert sorted(r["target"] for r in rows) == ["EMPLOYEE_ID", "MANAGER_ID"]
        assert {r["tenant"] for r in rows} == {"acme"}
        keys = s3_server.client().list_objects_v2(Bucket=bucket, Prefix="lancedb/").get("KeyCount", 0)
        assert keys > 0  # it really is on the S3 server
    finally:
        get_settings.cache_clear()
