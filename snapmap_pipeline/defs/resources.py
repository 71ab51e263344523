"""Resources per environment, picked in one place from `settings.env` ("local" or "prod").

Every secret comes from `dagster.EnvVar`; no other code branches on the environment.
"""

from typing import Any

import dagster as dg
from pydantic import Field

from snapmap_pipeline.defs.artifacts import ArtifactStore, LocalArtifactStore, S3ArtifactStore
from snapmap_pipeline.defs.io_manager import ParquetIOManager
from snapmap_pipeline.errors import ConfigError
from snapmap_pipeline.settings import Settings, get_settings

SOURCE_KINDS = ("local", "sftp", "s3")


class ArtifactsResource(dg.ConfigurableResource):
    """Where uploads, frames, feeds and reports live: a local folder or s3://bucket/prefix."""

    root: str
    s3_endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_region: str | None = None

    def store(self) -> ArtifactStore:
        if self.root.startswith("s3://"):
            client = _s3_client(
                self.s3_endpoint_url, self.aws_access_key_id, self.aws_secret_access_key, self.aws_region
            )
            return S3ArtifactStore(self.root, client)
        return LocalArtifactStore(self.root)


class DropSourcesResource(dg.ConfigurableResource):
    """The drop sources a sensor can watch. Each kind is off until configured (None).

    `move_processed`: move a file to `processed/` (or `failed/`) on its source after its run.
    """

    local_root: str | None = None
    sftp_host: str | None = None
    sftp_port: int = 22
    sftp_user: str | None = None
    sftp_password: str | None = None
    sftp_key_path: str | None = None
    sftp_known_hosts: str | None = None
    sftp_root: str = "/"
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_region: str | None = None
    done_marker: str | None = Field(None, description="e.g. '.done': take a file only once its marker exists")
    move_processed: bool = False

    def configured(self, kind: str) -> bool:
        return bool({"local": self.local_root, "sftp": self.sftp_host, "s3": self.s3_bucket}.get(kind))

    def source(self, kind: str) -> Any:
        """The connector for `kind` (a `DropSource`: list, ready, fetch, move, stat)."""
        if not self.configured(kind):
            raise ConfigError(
                f"drop source '{kind}' is not configured; set its SNAPMAP_* variables or turn its sensor off",
                code="source_not_configured",
                source=kind,
            )
        marker = bool(self.done_marker)
        if kind == "local":
            from snapmap_pipeline.connectors.local import LocalDropSource

            return LocalDropSource(self.local_root, require_done_marker=marker)
        if kind == "sftp":
            from snapmap_pipeline.connectors.sftp import SftpDropSource

            return SftpDropSource(
                self.sftp_host,
                self.sftp_port,
                self.sftp_user or "",
                self.sftp_root,
                known_hosts=self.sftp_known_hosts,
                password=self.sftp_password,
                pkey_path=self.sftp_key_path,
                require_done_marker=marker,
            )
        if kind == "s3":
            from snapmap_pipeline.connectors.s3 import S3DropSource

            client = _s3_client(
                self.s3_endpoint_url, self.aws_access_key_id, self.aws_secret_access_key, self.aws_region
            )
            return S3DropSource(client, self.s3_bucket, self.s3_prefix, require_done_marker=marker)
        raise ConfigError(f"unknown drop source '{kind}'; use one of {', '.join(SOURCE_KINDS)}")


def _s3_client(endpoint: str | None, key_id: str | None, secret: str | None, region: str | None) -> Any:
    """boto3 S3 client; keys when given (from EnvVar), else boto3's own chain (IAM role, env)."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        region_name=region,
    )


class DeliveryResource(dg.ConfigurableResource):
    """Where finished feeds go. Off (None) locally: the feeds stay in the artifacts store."""

    kind: str | None = None  # None, "local", "sftp" or "s3"
    target: str | None = None  # folder, remote dir or s3://bucket/prefix
    sftp_host: str | None = None
    sftp_port: int = 22
    sftp_user: str | None = None
    sftp_password: str | None = None
    sftp_key_path: str | None = None
    sftp_known_hosts: str | None = None
    s3_endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None

    def delivery_target(self) -> Any:
        """The connector's `DeliveryTarget` (put, deliver), or None when delivery is off."""
        if not self.kind:
            return None
        if self.kind == "local":
            from snapmap_pipeline.connectors.delivery import LocalDelivery

            return LocalDelivery(self.target or ".")
        if self.kind == "sftp":
            from snapmap_pipeline.connectors.delivery import SftpDelivery

            return SftpDelivery(
                self.sftp_host or "",
                self.sftp_port,
                self.sftp_user or "",
                self.target or "/",
                known_hosts=self.sftp_known_hosts,
                password=self.sftp_password,
                pkey_path=self.sftp_key_path,
            )
        if self.kind == "s3":
            from snapmap_pipeline.connectors.delivery import S3Delivery

            bucket, _, prefix = (self.target or "").removeprefix("s3://").partition("/")
            client = _s3_client(
                self.s3_endpoint_url, self.aws_access_key_id, self.aws_secret_access_key, None
            )
            return S3Delivery(client, bucket, prefix)
        raise ConfigError(f"unknown delivery kind '{self.kind}'; use local, sftp or s3", code="bad_delivery")


def _secret(name: str) -> dg.EnvVar | None:
    """An EnvVar for a secret that is set; None when unset (e.g. S3 through an IAM role)."""
    import os

    return dg.EnvVar(name) if os.environ.get(name) else None


def resources_for(env: str, settings: Settings | None = None) -> dict[str, Any]:
    """The resource set of one environment."""
    settings = settings or get_settings()
    local = {
        "artifacts": ArtifactsResource(root=settings.artifacts_root),
        "drop_sources": DropSourcesResource(local_root=settings.drop_root),
        "delivery": DeliveryResource(),
    }
    local["io_manager"] = ParquetIOManager(artifacts=local["artifacts"])
    if env == "local":
        return local
    if env == "prod":
        artifacts = ArtifactsResource(
            root=settings.artifacts_root,
            s3_endpoint_url=settings_or_none("S3_ENDPOINT_URL"),
            aws_access_key_id=_secret("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=_secret("AWS_SECRET_ACCESS_KEY"),
        )
        return {
            "artifacts": artifacts,
            "io_manager": ParquetIOManager(artifacts=artifacts),
            "drop_sources": DropSourcesResource(
                sftp_host=settings_or_none("SFTP_HOST"),
                sftp_port=int(settings_or_none("SFTP_PORT") or 22),
                sftp_user=settings_or_none("SFTP_USER"),
                sftp_password=_secret("SNAPMAP_SFTP_PASSWORD"),
                sftp_key_path=settings_or_none("SFTP_KEY_PATH"),
                sftp_known_hosts=settings_or_none("SFTP_KNOWN_HOSTS"),
                sftp_root=settings_or_none("SFTP_ROOT") or "/",
                s3_bucket=settings_or_none("DROP_BUCKET"),
                s3_prefix=settings_or_none("DROP_PREFIX") or "",
                s3_endpoint_url=settings_or_none("S3_ENDPOINT_URL"),
                aws_access_key_id=_secret("AWS_ACCESS_KEY_ID"),
                aws_secret_access_key=_secret("AWS_SECRET_ACCESS_KEY"),
                done_marker=settings_or_none("DONE_MARKER"),
                move_processed=True,
            ),
            "delivery": DeliveryResource(
                kind=settings_or_none("DELIVERY_KIND"),
                target=settings_or_none("DELIVERY_TARGET"),
                sftp_host=settings_or_none("DELIVERY_SFTP_HOST"),
                sftp_user=settings_or_none("DELIVERY_SFTP_USER"),
                sftp_password=_secret("SNAPMAP_DELIVERY_SFTP_PASSWORD"),
                sftp_key_path=settings_or_none("DELIVERY_SFTP_KEY_PATH"),
                sftp_known_hosts=settings_or_none("SFTP_KNOWN_HOSTS"),
                s3_endpoint_url=settings_or_none("S3_ENDPOINT_URL"),
                aws_access_key_id=_secret("AWS_ACCESS_KEY_ID"),
                aws_secret_access_key=_secret("AWS_SECRET_ACCESS_KEY"),
            ),
        }
    raise ConfigError(f"SNAPMAP_ENV={env!r} is not an environment; use 'local' or 'prod'", code="bad_env")


def settings_or_none(name: str) -> str | None:
    """A non-secret SNAPMAP_* value read at load time (secrets go through EnvVar instead)."""
    import os

    return os.environ.get(f"SNAPMAP_{name}") or None
