"""Drop sources (local folder, SFTP, S3) and delivery targets, behind two small interfaces.

Dagster-free: the Dagster shell wraps these in resources and sensors.
"""

from snapmap_pipeline.connectors.base import (
    DEFAULT_INCLUDE,
    DeliveryTarget,
    DropSource,
    ListCursor,
    ListPage,
    RemoteFile,
    Tick,
    poll,
    release,
    safe_relpath,
)
from snapmap_pipeline.connectors.delivery import (
    MANIFEST,
    DeliveredFile,
    LocalDelivery,
    S3Delivery,
    SftpDelivery,
)
from snapmap_pipeline.connectors.local import LocalDropSource
from snapmap_pipeline.connectors.retry import backoff_delays, with_retries
from snapmap_pipeline.connectors.s3 import S3DropSource, make_s3_client
from snapmap_pipeline.connectors.sftp import SftpDropSource, key_fingerprint

__all__ = [
    "DEFAULT_INCLUDE",
    "MANIFEST",
    "DeliveredFile",
    "DeliveryTarget",
    "DropSource",
    "ListCursor",
    "ListPage",
    "LocalDelivery",
    "LocalDropSource",
    "RemoteFile",
    "S3Delivery",
    "S3DropSource",
    "SftpDelivery",
    "SftpDropSource",
    "Tick",
    "backoff_delays",
    "key_fingerprint",
    "make_s3_client",
    "poll",
    "release",
    "safe_relpath",
    "with_retries",
]
