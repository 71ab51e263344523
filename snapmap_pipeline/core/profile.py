"""Column profiles: what each column's values look like (email, date, phone, id, number, boolean, text).

The mapping engine and the validator read these; all work is polars expressions over a head sample, one
pass for every column at once. No Dagster imports here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl

from snapmap_pipeline.settings import Settings, get_settings

# A share at or above this makes a kind dominant.
DOMINANT = 0.8

_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_TIME = r"[ T]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:\s?[ap]\.?m\.?)?\s?(?:z|utc|[+-]\d{2}:?\d{2})?"
_DATE_PATTERNS: dict[str, str] = {
    "iso": r"\d{4}-\d{1,2}-\d{1,2}|\d{4}/\d{1,2}/\d{1,2}",
    "slash": r"\d{1,2}[/-]\d{1,2}[/-](?:\d{4}|\d{2})",
    "dotted": r"\d{1,2}\.\d{1,2}\.(?:\d{4}|\d{2})",
    "named_month": (
        rf"\d{{1,2}}[ \-]{_MONTH}[ ,\-]*(?:\d{{4}}|\d{{2}})|{_MONTH} \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}"
    ),
}
_FORMATS = tuple(_DATE_PATTERNS.items())
_DATE_ANY = "|".join(f"(?:{p})" for p in _DATE_PATTERNS.values())
_RE_DATE = rf"(?i)^(?:{_DATE_ANY})$"
_RE_DATETIME = rf"(?i)^(?:{_DATE_ANY}){_TIME}$"
# The day/month parts of numeric dates whose year comes last (slash, dash, dotted).
_RE_DM_PARTS = r"^(\d{1,2})[/.-](\d{1,2})[/.-](?:\d{4}|\d{2})(?:[ T].*)?$"
_RE_EMAIL = r"^[A-Za-z0-9._%+'\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}$"
_RE_INTEGER = r"^[+-]?\d+$"
_RE_DECIMAL = r"^[+-]?[$€£]?\s?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+[.,]\d+|\.\d+)$"
# A phone has a leading + or separators; a bare digit run is an integer (or an id).
_RE_PHONE = (
    r"^(?:\+\s?[\d\s().\-/]+|\(?\d[\d\s().\-/]*[\s().\-/][\d\s().\-/]*\d(?:\s?(?:x|ext\.?)\s?\d{1,5})?)$"
)
_BOOLEAN_WORDS = ["yes", "no", "y", "n", "true", "false", "1", "0", "t", "f"]
# Excel day numbers 1954-12-… to 2064-04-…: only a hint, because ids fall in this range too.
_SERIAL_RANGE = (20_000, 60_000)


@dataclass
class ColumnProfile:
    """What one column's values look like. Shares are over non-null (non-blank) sampled values."""

    name: str
    rows: int = 0
    null_share: float = 1.0
    distinct: int = 0
    unique_share: float = 0.0
    email_share: float = 0.0
    webmail_share: float = 0.0  # of the emails, the share on webmail domains (settings.webmail)
    date_share: float = 0.0
    datetime_share: float = 0.0
    date_formats: list[str] = field(default_factory=list)
    day_first: bool | None = None
    phone_share: float = 0.0
    integer_share: float = 0.0
    decimal_share: float = 0.0
    boolean_share: float = 0.0
    id_like: bool = False
    text_share: float = 0.0
    mean_length: float = 0.0

    @property
    def kind(self) -> str:
        """The dominant kind, checked from the most specific to the most general."""
        if self.null_share >= 1.0 or self.rows == 0:
            return "empty"
        if self.email_share >= DOMINANT:
            return "email"
        if self.date_share + self.datetime_share >= DOMINANT:
            return "datetime" if self.datetime_share > self.date_share else "date"
        if self.boolean_share >= 0.95:
            return "boolean"
        if self.phone_share >= DOMINANT:
            return "phone"
        if self.id_like:
            return "id"
        if self.integer_share >= DOMINANT:
            return "integer"
        if self.integer_share + self.decimal_share >= DOMINANT:
            return "decimal"
        return "text"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kind": self.kind}


def profile_frame(
    df: pl.DataFrame, sample: int = 10_000, *, settings: Settings | None = None
) -> dict[str, ColumnProfile]:
    """Profile every column from the first `sample` rows (null share from the whole frame).

    >>> frame = pl.DataFrame({"mail": ["a@acme.com", "b@gmail.com", None], "n": ["1", "2", "2"]})
    >>> {name: p.kind for name, p in profile_frame(frame).items()}
    {'mail': 'email', 'n': 'integer'}
    """
    settings = settings or get_settings()
    if df.width == 0:
        return {}
    rows = df.height
    null_counts = df.null_count().row(0) if rows else [0] * df.width
    head = df.head(sample).with_columns(pl.all().cast(pl.String))
    stats = _column_stats(head, sorted(settings.webmail)) if head.height else {}

    profiles: dict[str, ColumnProfile] = {}
    for name, nulls in zip(df.columns, null_counts, strict=True):
        profile = ColumnProfile(name=name, rows=rows)
        s = stats.get(name)
        if rows == 0 or s is None or not s["n"]:
            profiles[name] = profile
            continue
        n = s["n"]
        # Whitespace-only cells count as null; their rate in the sample is carried over to the whole frame.
        blank_rate = (s["sampled"] - n) / head.height
        profile.null_share = _r(min(nulls / rows + blank_rate, 1.0))
        profile.distinct = s["distinct"]
        profile.unique_share = _r(s["distinct"] / n)
        profile.email_share = _r(s["email"] / n)
        profile.webmail_share = _r(s["webmail"] / s["email"]) if s["email"] else 0.0
        profile.date_share = _r(s["date"] / n)
        profile.datetime_share = _r(s["datetime"] / n)
        profile.phone_share = _r(s["phone"] / n)
        profile.integer_share = _r(s["integer"] / n)
        profile.decimal_share = _r(s["decimal"] / n)
        profile.boolean_share = _r(s["boolean"] / n)
        profile.text_share = _r(s["text"] / n)
        profile.mean_length = _r(s["mean_length"] or 0.0)
        profile.day_first = _day_first(bool(s["first_over_12"]), bool(s["second_over_12"]))
        profile.date_formats = _date_formats(s, n, profile.day_first)
        profile.id_like = (
            profile.unique_share >= 0.95
            and n >= 2
            and profile.null_share <= 0.1
            and s["spaced"] <= 0.02 * n
            and s["digit"] >= 0.8 * n
            and (s["max_length"] or 0) <= 40
            and profile.email_share < 0.5
            and profile.date_share + profile.datetime_share < 0.5
            and profile.decimal_share < 0.5
        )
        profiles[name] = profile
    return profiles


def _column_stats(head: pl.DataFrame, webmail: list[str]) -> dict[str, dict[str, Any]]:
    """One long-format pass: every (column, value) pair gets its flags, then one group-by per column."""
    value = pl.col("v")
    long = (
        head.unpivot(variable_name="column", value_name="raw")
        .with_columns(pl.col("raw").str.strip_chars().alias("v"))
        .with_columns(pl.when(value != "").then(value).alias("v"))
    )
    is_email = value.str.contains(_RE_EMAIL)
    is_date = value.str.contains(_RE_DATE)
    is_datetime = value.str.contains(_RE_DATETIME)
    is_integer = value.str.contains(_RE_INTEGER)
    is_decimal = value.str.contains(_RE_DECIMAL) & ~is_integer
    digits = value.str.count_matches(r"\d")
    is_phone = (
        value.str.contains(_RE_PHONE) & digits.is_between(7, 15) & ~is_date & ~is_datetime & ~is_decimal
    )
    is_boolean = value.str.to_lowercase().is_in(_BOOLEAN_WORDS)
    domain = value.str.extract(r"@([^@]+)$", 1).str.to_lowercase()
    parts = value.str.extract_groups(_RE_DM_PARTS)
    first = parts.struct.field("1").cast(pl.Int32, strict=False)
    second = parts.struct.field("2").cast(pl.Int32, strict=False)
    integer_value = value.cast(pl.Int64, strict=False)
    flags = long.filter(value.is_not_null()).with_columns(
        email=is_email,
        date=is_date & ~is_datetime,
        datetime=is_datetime,
        phone=is_phone,
        integer=is_integer,
        decimal=is_decimal,
        boolean=is_boolean,
        webmail=is_email & domain.is_in(webmail),
        first_over_12=(first > 12) & (second <= 12),
        second_over_12=(second > 12) & (first <= 12),
        length=value.str.len_chars(),
        spaced=value.str.contains(r"\s"),
        digit=value.str.contains(r"\d"),
        serial=integer_value.is_between(*_SERIAL_RANGE),
        **{
            f"fmt_{name}": value.str.contains(rf"(?i)^(?:{p})(?:{_TIME})?$")
            for name, p in _DATE_PATTERNS.items()
        },
    )
    typed = pl.any_horizontal("email", "date", "datetime", "phone", "integer", "decimal", "boolean")
    fmt_cols = [f"fmt_{name}" for name in _DATE_PATTERNS]
    agg = flags.group_by("column").agg(
        pl.len().alias("n"),
        pl.col("v").n_unique().alias("distinct"),
        *(
            pl.col(c).sum()
            for c in (
                "email",
                "date",
                "datetime",
                "phone",
                "integer",
                "decimal",
                "boolean",
                "webmail",
                "spaced",
                "digit",
                "serial",
                *fmt_cols,
            )
        ),
        pl.col("first_over_12").any(),
        pl.col("second_over_12").any(),
        (~typed).sum().alias("text"),
        pl.col("length").mean().alias("mean_length"),
        pl.col("length").max().alias("max_length"),
    )
    sampled = long.group_by("column").agg(pl.col("raw").is_not_null().sum().alias("sampled"))
    out: dict[str, dict[str, Any]] = {
        r["column"]: {**r, "n": 0, "distinct": 0} for r in sampled.iter_rows(named=True)
    }
    for r in agg.iter_rows(named=True):  # one row per column, not per value
        out[r["column"]].update(r)
    return out


def _day_first(first_over_12: bool, second_over_12: bool) -> bool | None:
    """A day above 12 in the first part means day first; in the second, month first; both or neither: open."""
    if first_over_12 and not second_over_12:
        return True
    if second_over_12 and not first_over_12:
        return False
    return None


def _date_formats(s: dict[str, Any], n: int, day_first: bool | None) -> list[str]:
    """Format names seen in at least 5% of values, most common first."""
    found: list[tuple[int, str]] = []
    for name in _DATE_PATTERNS:
        count = s.get(f"fmt_{name}") or 0
        if count < 0.05 * n or not count:
            continue
        if name == "slash":
            names = {True: ["dmy"], False: ["mdy"], None: ["dmy", "mdy"]}[day_first]
            found.extend((count, x) for x in names)
        else:
            found.append((count, name))
    if s.get("integer", 0) >= 0.9 * n and s.get("serial", 0) >= 0.9 * n:
        found.append((s["serial"], "excel_serial"))
    found.sort(key=lambda item: -item[0])
    return [name for _, name in found]


def _r(x: float) -> float:
    return round(float(x), 4)
