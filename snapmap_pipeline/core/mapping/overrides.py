"""Per-tenant overrides from `<config_dir>/tenants/<tenant>.yaml`: entity, header → field, ignored and
custom columns, date order, webmail domains, and named parameters for the SQL models and XML-only values
(e.g. `group_id`). An override always wins (method `override`).
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from snapmap_pipeline import yamlfile
from snapmap_pipeline.core.mapping.normalize import fold, normalize
from snapmap_pipeline.errors import ConfigError
from snapmap_pipeline.settings import Settings, get_settings

_TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
# retention_days is read by core/retention.py from the same file.
_KEYS = {
    "entity",
    "columns",
    "ignore",
    "custom",
    "date_order",
    "webmail_domains",
    "retention_days",
    "parameters",
}
_PARAM_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass
class TenantOverrides:
    """What a tenant's YAML says. Empty when the tenant has no file."""

    tenant: str | None = None
    entity: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    ignore: list[str] = field(default_factory=list)
    custom: list[str] = field(default_factory=list)
    date_order: str | None = None
    webmail_domains: list[str] = field(default_factory=list)
    # Named values for the SQL models (`:name`) and the schemas' xml_values (`param: name`).
    parameters: dict[str, str | int | float | bool] = field(default_factory=dict)

    def _find(self, header: str, keys: list[str]) -> str | None:
        if header in keys:
            return header
        norm = normalize(header)
        return next((k for k in keys if normalize(k) == norm), None)

    def target_for(self, header: str) -> tuple[str | None, str] | None:
        """(target, method) the overrides decide for a header, or None if they say nothing."""
        if not (self.columns or self.ignore or self.custom):
            return None
        key = self._find(header, list(self.columns))
        if key is not None:
            return self.columns[key], "override"
        if self._find(header, self.ignore) is not None:
            return None, "ignored"
        if self._find(header, self.custom) is not None:
            return custom_name(header), "custom"
        return None


def custom_name(header: str) -> str:
    """EFCUSTOM_STR_<NAME>, NAME the upper-snake form of the header: 'Cost Center' → COST_CENTER."""
    name = "_".join(normalize(fold(header)).split()).upper().replace("#", "NUMBER")
    return f"EFCUSTOM_STR_{name or 'COLUMN'}"


def check_tenant(tenant: str) -> str:
    if not _TENANT_RE.match(tenant or ""):
        raise ConfigError(
            f"tenant name '{tenant}' is not allowed; use letters, digits, '.', '_' or '-'",
            code="bad_tenant",
            tenant=tenant,
        )
    return tenant


def tenant_path(tenant: str, settings: Settings | None = None) -> Path:
    settings = settings or get_settings()
    return Path(settings.config_dir) / "tenants" / f"{check_tenant(tenant)}.yaml"


def load_overrides(tenant: str | None, settings: Settings | None = None) -> TenantOverrides:
    """Read the tenant's YAML (missing file → empty overrides). Bad content is a ConfigError."""
    if not tenant:
        return TenantOverrides()
    path = tenant_path(tenant, settings)
    if not path.exists():
        return TenantOverrides(tenant=tenant)
    try:
        raw = yamlfile.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"{path}: cannot read: {exc}; fix the YAML", code="bad_overrides", path=str(path)
        ) from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys {sorted(_KEYS)}", code="bad_overrides")
    unknown = set(raw) - _KEYS
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_KEYS)}",
            code="bad_overrides",
            path=str(path),
        )
    columns = raw.get("columns") or {}
    if not isinstance(columns, dict):
        raise ConfigError(f"{path}: 'columns' must map header → field", code="bad_overrides", path=str(path))
    date_order = raw.get("date_order")
    if date_order not in (None, "dmy", "mdy"):
        raise ConfigError(f"{path}: date_order must be dmy or mdy", code="bad_overrides", path=str(path))
    parameters = _parameters(raw.get("parameters"), path)
    return TenantOverrides(
        tenant=tenant,
        entity=raw.get("entity"),
        columns={str(k): str(v) for k, v in columns.items()},
        ignore=[str(x) for x in raw.get("ignore") or []],
        custom=[str(x) for x in raw.get("custom") or []],
        date_order=date_order,
        webmail_domains=[str(x).lower() for x in raw.get("webmail_domains") or []],
        parameters=parameters,
    )


def _parameters(raw: object, path: Path) -> dict[str, str | int | float | bool]:
    """`parameters`: lower_snake names → scalars. They reach SQL only as bound literals, never as SQL text."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: 'parameters' must map name → value (e.g. group_id: acme.com)",
            code="bad_overrides",
            path=str(path),
        )
    out: dict[str, str | int | float | bool] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not _PARAM_RE.match(name):
            raise ConfigError(
                f"{path}: parameter name {name!r} must be lower_snake_case (letters, digits, _)",
                code="bad_overrides",
                path=str(path),
            )
        if not isinstance(value, str | int | float | bool):
            raise ConfigError(
                f"{path}: parameter {name} must be a single text, number or true/false value",
                code="bad_overrides",
                path=str(path),
                parameter=name,
            )
        out[name] = value
    return out


def set_override(tenant: str, header: str, target: str | None, settings: Settings | None = None) -> Path:
    """Write header → field into the tenant's YAML (created if missing); returns the path.

    `target` None (or "") puts the header under `ignore` instead. The file is rewritten atomically;
    comments in it are not kept."""
    path = tenant_path(tenant, settings)
    raw: dict = {}
    if path.exists():
        try:
            raw = yamlfile.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(
                f"{path}: cannot read: {exc}; fix the YAML first", code="bad_overrides"
            ) from exc
    columns = {k: v for k, v in (raw.get("columns") or {}).items() if k != header}
    ignore = [h for h in raw.get("ignore") or [] if h != header]
    if target:
        columns[header] = target
    else:
        ignore.append(header)
    raw["columns"] = columns
    raw["ignore"] = ignore
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump(raw, fh, sort_keys=False, allow_unicode=True)
    os.replace(tmp, path)
    return path
