"""One error hierarchy for SnapMap. Every failure a user can cause carries a code, a message that says
what to do next, and details (never cell values).

The CLI maps the family to an exit code: `InputError` → 2 (unusable input), `ReviewRequired` → 3
(a mapping or entity needs a person), anything else → 1.
"""

from __future__ import annotations

from typing import Any


class SnapMapError(Exception):
    """Base of every SnapMap error. `code` is stable and machine-readable."""

    code: str = "snapmap_error"
    exit_code: int = 1

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = details

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class ConfigError(SnapMapError):
    """Settings, schema or override files are wrong."""

    code = "config_error"


class SchemaError(ConfigError):
    """An entity schema YAML is invalid (unknown type, duplicate field, …)."""

    code = "schema_invalid"


class UnknownEntityError(SnapMapError):
    code = "unknown_entity"
    exit_code = 2


# -- unusable input (exit 2) -------------------------------------------------------------------------
class InputError(SnapMapError):
    """The dropped file cannot be used as it is."""

    code = "input_error"
    exit_code = 2


class EmptyFileError(InputError):
    code = "empty_file"


class FileTooLargeError(InputError):
    code = "file_too_large"


class UnsupportedFileTypeError(InputError):
    code = "unsupported_file_type"


class ZipBombError(InputError):
    code = "zip_bomb"


class TooManyColumnsError(InputError):
    code = "too_many_columns"


class CellTooLargeError(InputError):
    code = "cell_too_large"


class DecodeError(InputError):
    code = "undecodable"


# -- needs a person (exit 3) -------------------------------------------------------------------------
class ReviewRequired(SnapMapError):
    """Processing stopped on purpose: the entity or a mapping is uncertain. Nothing was exported."""

    code = "review_required"
    exit_code = 3


class EntityUnknownError(ReviewRequired):
    code = "entity_unknown"


class MappingReviewError(ReviewRequired):
    code = "mapping_needs_review"


# -- connectors --------------------------------------------------------------------------------------
class ConnectorError(SnapMapError):
    code = "connector_error"


class SourceUnavailableError(ConnectorError):
    code = "source_unavailable"


class HostKeyError(ConnectorError):
    code = "host_key_rejected"


class AuthenticationError(ConnectorError):
    code = "authentication_failed"


class RemotePathError(ConnectorError):
    code = "unsafe_remote_path"


class TransferError(ConnectorError):
    code = "transfer_failed"


class ExportError(SnapMapError):
    code = "export_failed"
