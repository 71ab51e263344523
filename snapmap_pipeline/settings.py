"""Settings from the environment (`SNAPMAP_*`) with embedded local defaults. Secrets are never given
defaults here; they come from the environment only (Dagster `EnvVar` in the shell)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DEFAULT_WEBMAIL = (
    "gmail.com,googlemail.com,yahoo.com,yahoo.co.uk,yahoo.fr,hotmail.com,hotmail.co.uk,outlook.com,"
    "live.com,msn.com,aol.com,icloud.com,me.com,mac.com,gmx.de,gmx.net,web.de,mail.com,protonmail.com,"
    "proton.me,yandex.ru,yandex.com,qq.com,163.com,126.com,orange.fr,free.fr,laposte.net,libero.it,"
    "zoho.com,rediffmail.com,invalidemail.com"
)


class Settings(BaseSettings):
    """Every knob SnapMap reads. Documented in the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="SNAPMAP_", extra="ignore")

    env: str = Field("local", description="Resource set to use: local or prod.")
    artifacts_root: str = Field(str(PROJECT_ROOT / ".snapmap"), description="Local dir or s3:// URI.")
    drop_root: str = Field(str(PROJECT_ROOT / "examples" / "drops"), description="Local drop folder.")
    config_dir: Path = Field(PROJECT_ROOT / "config", description="Tenant overrides and glossaries.")
    schemas_dir: Path = Field(PROJECT_ROOT / "schemas")
    sql_dir: Path = Field(PROJECT_ROOT / "dbt-free-sql")
    lancedb_uri: str | None = Field(None, description="Default: <artifacts_root>/lancedb.")
    s3_endpoint_url: str | None = Field(
        None, description="An S3-compatible endpoint (MinIO, moto) for s3:// artifacts and the LanceDB store."
    )

    max_file_bytes: int = 200 * 1024 * 1024
    max_columns: int = 2000
    max_cell_bytes: int = 1024 * 1024
    xlsx_max_uncompressed_bytes: int = 1024 * 1024 * 1024
    xlsx_max_ratio: float = 200.0

    confidence_threshold: float = Field(0.6, description="Below this a mapping needs review.")
    entity_threshold: float = Field(0.5, description="Below this the entity is 'unknown'.")
    webmail_domains: str = DEFAULT_WEBMAIL
    date_order: str | None = Field(None, description="Force 'dmy' or 'mdy' for ambiguous dates.")
    quality_sample_rows: int = 20_000
    quality_gx_min_rows: int = Field(
        10_000,
        description="From this many checked rows Great Expectations runs the quality suite (with Data "
        "Docs); below it the same expectations run in polars (GX's import is a fixed 3-5 s).",
    )
    in_process_below_bytes: int = Field(
        16 * 1024 * 1024,
        description="A dropped file below this size runs every step in its run's own process "
        "(0: always one process per step).",
    )
    xsd_full_check_rows: int = Field(
        50_000,
        description="Up to this many rows every record is checked against the XSD while writing; "
        "above it, the first xsd_sample_records of each 100k-record chunk (of a streamed file's smaller "
        "slices, the same share; the report says how many were checked).",
    )
    xsd_sample_records: int = 5_000
    stream_above_bytes: int = Field(
        64 * 1024 * 1024, description="CSV files larger than this are streamed in bounded memory."
    )

    log_format: str = Field("text", description="text or json.")
    log_level: str = "INFO"
    preview: bool = Field(False, description="Show unmasked cell values in metadata previews.")
    retention_days: int = 30
    alert_webhook_url: str | None = None

    @property
    def lancedb_path(self) -> str:
        return self.lancedb_uri or f"{self.artifacts_root.rstrip('/')}/lancedb"

    @property
    def webmail(self) -> frozenset[str]:
        return frozenset(d.strip().lower() for d in self.webmail_domains.split(",") if d.strip())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
