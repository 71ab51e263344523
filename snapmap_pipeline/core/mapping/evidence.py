"""Value evidence: how well a column's values (its profile from core/profile.py) fit each field of the
schema, as factors and floors the engine multiplies into the header scores. A column of emails is no
first name; webmail goes to the personal email, company mail to the work one; dates fit date fields; a
unique id-like column fits the key."""

from __future__ import annotations

from typing import Any

import numpy as np

from snapmap_pipeline.core.mapping.signals import field_words
from snapmap_pipeline.core.schema import EntitySchema, FieldSpec


def _get(profile: Any, name: str, default: float = 0.0) -> float:
    value = getattr(profile, name, None)
    if value is None and isinstance(profile, dict):
        value = profile.get(name)
    try:
        return float(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def field_kind(spec: FieldSpec) -> str:
    """What a field's values are: its type, or its items' type for a list."""
    return (spec.item_type or spec.type) if spec.type == "list" else spec.type


VALUE_FLOOR = 0.55  # a column of emails is at least this sure to be the email field its domains fit


def value_floor(profile: Any, schema: EntitySchema, webmail_words: frozenset[str]) -> np.ndarray:
    """Per field, the least score the values alone give: a column of webmail addresses fits the
    personal email field, a column of company addresses the work email field(s)."""
    out = np.zeros(len(schema.fields), dtype=np.float32)
    if profile is None or _get(profile, "email_share") < 0.8 or _get(profile, "rows") <= 0:
        return out
    webmail = _get(profile, "webmail_share")
    if 0.1 < webmail < 0.6:
        return out  # mixed domains: the values do not say which
    for i, spec in enumerate(schema.fields):
        if field_kind(spec) != "email":
            continue
        personal = bool(webmail_words & set(field_words(spec.name)))
        if personal == (webmail >= 0.6):
            out[i] = VALUE_FLOOR
    return out


ID_VALUES_FOR_NAME = 0.7  # a column of numbers is an id of a person, never their name


def value_factors(
    profile: Any,
    schema: EntitySchema,
    webmail_words: frozenset[str],
    person_name: tuple[bool, ...] = (),
) -> np.ndarray:
    """Per field, a factor for how well the column's values fit it (1 = no evidence).

    Emails fit email fields only; of email fields, webmail fits the personal one, company mail the
    work one. Dates fit date fields. A unique id-like column fits the key."""
    n = len(schema.fields)
    out = np.ones(n, dtype=np.float32)
    if profile is None:
        return out
    rows = _get(profile, "rows")
    null_share = _get(profile, "null_share")
    if rows <= 0 or null_share >= 0.999:
        return out
    email = _get(profile, "email_share")
    webmail = _get(profile, "webmail_share")
    date = max(_get(profile, "date_share"), _get(profile, "datetime_share"))
    id_like = bool(
        getattr(profile, "id_like", False) or (isinstance(profile, dict) and profile.get("id_like"))
    )
    unique = _get(profile, "unique_share")
    numeric = max(_get(profile, "integer_share"), _get(profile, "decimal_share"))
    boolean = _get(profile, "boolean_share")
    for i, spec in enumerate(schema.fields):
        kind = field_kind(spec)
        f = 1.0
        personal = bool(webmail_words & set(field_words(spec.name)))
        if email >= 0.8:
            if kind == "email":
                f = 1.1
                if webmail >= 0.6:
                    f = 1.15 if personal else 0.8
                elif webmail <= 0.1 and personal:
                    f = 0.85
            else:
                f = 0.3
        elif kind == "email" and email < 0.2 and _get(profile, "text_share", 1.0) > 0.5:
            f = 0.4
        elif date >= 0.8:
            # dates fit date fields; free-text fields may hold them, typed ones (numbers, enums) not
            f = 1.1 if kind in ("date", "datetime") else (0.85 if kind == "string" else 0.55)
        elif kind in ("date", "datetime") and date < 0.2:
            f = 0.4 if boolean >= 0.95 else 0.6  # a column of yes/no is never a date
        else:
            booleans_elsewhere = boolean >= 0.95 and kind not in ("boolean", "string", "enum")
            words_for_number = kind in ("integer", "float") and numeric < 0.2
            if booleans_elsewhere or words_for_number:
                f = 0.7
        if person_name and person_name[i] and (numeric >= 0.9 or id_like) and email < 0.2:
            # "ReportingTo" holding 10050, 10060: the manager's id, not the manager's name
            f *= ID_VALUES_FOR_NAME
        if spec.name == schema.key:
            if id_like and unique >= 0.98:
                f *= 1.1
            elif unique < 0.5 and rows >= 20:
                f *= 0.6
        out[i] = f
    return out
