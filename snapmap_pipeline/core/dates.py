"""Dates and datetimes from HR exports into Eightfold's text forms (`yyyy-MM-dd`, `yyyy-MM-ddTHH:MM:SS`).

Vectorised with polars over a column's unique values; never guesses day/month order. No Dagster imports.

What is read:
- ISO (`2024-03-05`, `2024/3/5`, `2024.03.05`, `20240305`), with or without a time;
- day/month/year numbers in either order (`05/03/2024`, `5-3-24`, `05.03.2024`): the order is decided per
  column, see `normalise_dates`;
- named months in English, German and French (`5 Jan 2024`, `January 5th, 2024`, `5. März 2024`,
  `1er janvier 2024`, `2024-Jan-05`), with an optional leading weekday;
- Excel serial day numbers between 10000 (1927-05-18) and 73050 (2099-12-31), fraction = time of day;
- times `HH:MM[:SS][.fff] [am|pm]` and a zone `Z`, `UTC`, `GMT`, `+01:00`, `+0100`, `+01`.

Choices (documented in dbt-free-sql/README.md too):
- A datetime with a zone is converted to UTC and written without the zone; a datetime without a zone is
  kept as written (Eightfold's form carries no zone).
- A date field given a datetime keeps the date as written (no zone shift: the source meant that day).
- Two-digit years follow the POSIX/Python `%y` rule: 00-68 → 20xx, 69-99 → 19xx.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

import polars as pl

DateKind = Literal["date", "datetime"]

# Month spellings (lower case, trailing dot removed) → month number. Language data, not entity data.
_MONTH_WORDS: dict[int, tuple[str, ...]] = {
    1: ("jan", "january", "januar", "jän", "jänner", "janv", "janvier"),
    2: ("feb", "february", "februar", "feber", "fév", "fev", "févr", "fevr", "février", "fevrier"),
    3: ("mar", "march", "mär", "mrz", "märz", "maerz", "mars"),
    4: ("apr", "april", "avr", "avril"),
    5: ("may", "mai"),
    6: ("jun", "june", "juni", "juin"),
    7: ("jul", "july", "juli", "juil", "juillet"),
    8: ("aug", "august", "août", "aout"),
    9: ("sep", "sept", "september", "septembre"),
    10: ("oct", "october", "okt", "oktober", "octobre"),
    11: ("nov", "november", "novembre"),
    12: ("dec", "december", "dez", "dezember", "déc", "décembre", "decembre"),
}
MONTHS: dict[str, int] = {word: num for num, words in _MONTH_WORDS.items() for word in words}

EXCEL_EPOCH = date(1899, 12, 30)
EXCEL_SERIAL_MIN = 10_000  # 1927-05-18
EXCEL_SERIAL_MAX = 73_050  # 2099-12-31

_SEP = r"[-/.\s]"
_ORD = r"(?:st|nd|rd|th|er)?"
_WEEKDAY = r"(?:\p{L}+\.?,?\s+)?"
_YEAR = r"(?P<y>\d{4}|\d{2})"
# A time at the end of the value, after `T`, spaces or a comma.
_TIME_TAIL = (
    r"(?:t|[\s,]+)(?P<hh>\d{1,2}):(?P<mi>\d{2})(?::(?P<ss>\d{2}))?(?:[.,]\d+)?"
    r"\s*(?P<ap>[ap])?\.?(?:m\.?)?\s*(?P<tz>z|utc|gmt|(?:utc|gmt)?\s*[+-]\d{2}(?::?\d{2})?)?$"
)
_ISO = r"^(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})$"
_COMPACT = r"^(?P<y>(?:19|20)\d{2})(?P<m>\d{2})(?P<d>\d{2})$"
_NUMERIC = rf"^(?P<a>\d{{1,2}}){_SEP}(?P<b>\d{{1,2}}){_SEP}{_YEAR}$"
_NAMED_DMY = rf"^{_WEEKDAY}(?P<d>\d{{1,2}}){_ORD}\.?{_SEP}*(?P<mon>\p{{L}}+)\.?[-/.\s,]*{_YEAR}$"
_NAMED_MDY = rf"^{_WEEKDAY}(?P<mon>\p{{L}}+)\.?{_SEP}*(?P<d>\d{{1,2}}){_ORD},?{_SEP}*(?P<y>\d{{4}})$"
_NAMED_YMD = rf"^(?P<y>\d{{4}}){_SEP}(?P<mon>\p{{L}}+)\.?{_SEP}(?P<d>\d{{1,2}})$"
_SERIAL = r"^\d{5}(?:\.\d+)?$"


@dataclass(frozen=True)
class DateColumnResult:
    """One column's outcome, aligned with the input rows."""

    values: pl.Series  # Eightfold text form; null for blank, unreadable or ambiguous
    invalid: pl.Series  # bool: a non-blank value that is not a readable, real date
    ambiguous: pl.Series  # bool: day and month could be swapped and nothing decides the order
    order: str  # dmy | mdy (decided), undecided, conflict, iso (no day/month-number values), empty
    order_source: str  # evidence | config | none
    evidence: dict[str, bool]  # {"dmy": any first part > 12, "mdy": any second part > 12}


def _int(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.Int32, strict=False)


def _year(expr: pl.Expr) -> pl.Expr:
    y = _int(expr)
    two_digit = expr.str.len_chars() == 2
    return pl.when(two_digit & (y <= 68)).then(y + 2000).when(two_digit).then(y + 1900).otherwise(y)


def _month_word(expr: pl.Expr) -> pl.Expr:
    return expr.str.strip_chars(".").replace_strict(MONTHS, default=None, return_dtype=pl.Int32)


def _components(raw: pl.Series) -> pl.DataFrame:
    """Split each unique raw value into candidate date/time parts (strings → ints), one row per value."""
    s = pl.col("raw").str.strip_chars().str.to_lowercase().str.replace_all(r"\s+", " ")
    frame = pl.DataFrame({"raw": raw}).lazy().with_columns(s.alias("s"))
    frame = frame.with_columns(
        pl.col("s").str.extract_groups(_TIME_TAIL).alias("t"),
        pl.col("s").str.replace(_TIME_TAIL, "").str.strip_chars().alias("dp"),
    )
    frame = frame.with_columns(
        pl.col("dp").str.extract_groups(_ISO).alias("iso"),
        pl.col("dp").str.extract_groups(_COMPACT).alias("compact"),
        pl.col("dp").str.extract_groups(_NUMERIC).alias("num"),
        pl.col("dp").str.extract_groups(_NAMED_DMY).alias("ndmy"),
        pl.col("dp").str.extract_groups(_NAMED_MDY).alias("nmdy"),
        pl.col("dp").str.extract_groups(_NAMED_YMD).alias("nymd"),
        pl.when(pl.col("s").str.contains(_SERIAL))
        .then(pl.col("s").cast(pl.Float64, strict=False))
        .alias("serial"),
    )
    serial_ok = pl.col("serial").is_between(EXCEL_SERIAL_MIN, EXCEL_SERIAL_MAX + 0.999999)
    serial_date = pl.lit(EXCEL_EPOCH) + pl.duration(days=pl.col("serial").floor().cast(pl.Int64))
    serial_secs = ((pl.col("serial") - pl.col("serial").floor()) * 86400).round(0).cast(pl.Int32)
    frame = frame.with_columns(
        y_def=pl.coalesce(
            _int(pl.col("iso").struct.field("y")),
            _int(pl.col("compact").struct.field("y")),
            _year(pl.col("ndmy").struct.field("y")),
            _year(pl.col("nmdy").struct.field("y")),
            _int(pl.col("nymd").struct.field("y")),
            pl.when(serial_ok).then(serial_date.dt.year().cast(pl.Int32)),
        ),
        m_def=pl.coalesce(
            _int(pl.col("iso").struct.field("m")),
            _int(pl.col("compact").struct.field("m")),
            _month_word(pl.col("ndmy").struct.field("mon")),
            _month_word(pl.col("nmdy").struct.field("mon")),
            _month_word(pl.col("nymd").struct.field("mon")),
            pl.when(serial_ok).then(serial_date.dt.month().cast(pl.Int32)),
        ),
        d_def=pl.coalesce(
            _int(pl.col("iso").struct.field("d")),
            _int(pl.col("compact").struct.field("d")),
            _int(pl.col("ndmy").struct.field("d")),
            _int(pl.col("nmdy").struct.field("d")),
            _int(pl.col("nymd").struct.field("d")),
            pl.when(serial_ok).then(serial_date.dt.day().cast(pl.Int32)),
        ),
        a=_int(pl.col("num").struct.field("a")),
        b=_int(pl.col("num").struct.field("b")),
        y_num=_year(pl.col("num").struct.field("y")),
        hh=_int(pl.col("t").struct.field("hh")),
        mi=_int(pl.col("t").struct.field("mi")),
        ss=pl.coalesce(_int(pl.col("t").struct.field("ss")), pl.lit(0, pl.Int32)),
        ap=pl.col("t").struct.field("ap"),
        tz=pl.col("t").struct.field("tz").str.replace_all(r"utc|gmt|\s|:", ""),
        serial_secs=pl.when(serial_ok).then(serial_secs),
    )
    # The zone as minutes east of UTC: "" (was Z/UTC/GMT) → 0; "+0130" → 90; "+01" → 60.
    tz = pl.col("tz")
    sign = pl.when(tz.str.starts_with("-")).then(-1).otherwise(1)
    tz_min = (
        pl.when(tz.is_null())
        .then(None)
        .when((tz == "") | (tz == "z"))
        .then(0)
        .otherwise(sign * (_int(tz.str.slice(1, 2)) * 60 + pl.coalesce(_int(tz.str.slice(3, 2)), 0)))
    )
    hh = pl.col("hh")
    hour = (
        pl.when(pl.col("ap").is_null())
        .then(hh)
        .when(~hh.is_between(1, 12))
        .then(None)  # "13:00 pm" is not a time
        .when(pl.col("ap") == "a")
        .then(hh % 12)
        .otherwise(hh % 12 + 12)
    )
    frame = frame.with_columns(hour=hour, tz_min=tz_min)
    return frame.select(
        "raw", "y_def", "m_def", "d_def", "a", "b", "y_num", "hour", "mi", "ss", "tz_min", "serial_secs"
    ).collect()


def _canonical(raw: pl.Series, kind: DateKind) -> pl.Series:
    """The Eightfold text for values already written `yyyy-MM-dd[( |T)HH:MM:SS]` with a real day and
    time, else null. One pass over the rows, no parsing beyond the day."""
    s = pl.col("raw")
    day = s.str.slice(0, 10)
    real_day = day.str.to_date("%Y-%m-%d", strict=False).is_not_null()
    is_day = s.str.contains(r"^\d{4}-\d{2}-\d{2}$")
    is_stamp = s.str.contains(r"^\d{4}-\d{2}-\d{2}[T ](?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d$")
    if kind == "date":
        out = pl.when((is_day | is_stamp) & real_day).then(day)
    else:
        out = (
            pl.when(is_stamp & real_day)
            .then(pl.concat_str(day, pl.lit("T"), s.str.slice(11)))
            .when(is_day & real_day)
            .then(pl.concat_str(day, pl.lit("T00:00:00")))
        )
    return pl.DataFrame({"raw": raw}).lazy().select(out.alias(raw.name)).collect().to_series()


def _evidence(a: pl.Series, b: pl.Series) -> dict[str, bool]:
    valid = a.is_between(1, 31) & b.is_between(1, 31)
    return {
        "numeric": bool(valid.any()),
        "dmy": bool((valid & (a > 12)).any()),
        "mdy": bool((valid & (b > 12)).any()),
    }


def decide_order(
    a: pl.Series, b: pl.Series, configured: str | None, *, evidence: dict[str, bool] | None = None
) -> tuple[str, str, dict[str, bool]]:
    """Day/month order for a column: evidence first (a first part > 12 means dmy, a second part > 12
    means mdy), then the configured order, otherwise undecided. Both kinds of evidence: conflict.

    `evidence` (from `date_evidence` over a whole file, see core/stream.py) replaces what `a` and `b`
    show, so every batch of a streamed file decides the same way.
    """
    found = evidence if evidence is not None else _evidence(a, b)
    has_numeric, dmy, mdy = found.get("numeric", False), found["dmy"], found["mdy"]
    evidence = {"dmy": dmy, "mdy": mdy}
    if not has_numeric:
        return "iso", "none", evidence
    if dmy and not mdy:
        return "dmy", "evidence", evidence
    if mdy and not dmy:
        return "mdy", "evidence", evidence
    if configured in ("dmy", "mdy"):
        return configured, "config", evidence
    return ("conflict" if dmy and mdy else "undecided"), "none", evidence


def _unique_to_parse(raw: pl.Series, canonical: pl.Series) -> pl.Series:
    """The distinct non-blank values the fast path did not read: only these go through the regexes."""
    return (
        pl.DataFrame({"raw": raw, "canonical": canonical})
        .lazy()
        .filter(pl.col("canonical").is_null() & pl.col("raw").is_not_null())
        .select(pl.col("raw").unique())
        .collect()
        .to_series()
    )


def date_evidence(series: pl.Series, kind: DateKind) -> dict[str, bool]:
    """What one slice of a column shows about its day/month order: {"numeric", "dmy", "mdy"}.

    Merge slices with `merge_evidence`; the result given to `normalise_dates(evidence=...)` decides the
    order as if the whole column had been seen at once. Memory: the slice's distinct values only.
    """
    raw = series.cast(pl.String)
    comp = _components(_unique_to_parse(raw, _canonical(raw, kind)))
    return _evidence(comp["a"], comp["b"])


def merge_evidence(*found: dict[str, bool] | None) -> dict[str, bool]:
    """Evidence of several slices of one column (any slice showing it is enough)."""
    keys = ("numeric", "dmy", "mdy")
    return {k: any(bool(f and f.get(k)) for f in found) for k in keys}


def normalise_dates(
    series: pl.Series,
    kind: DateKind,
    *,
    date_order: str | None = None,
    evidence: dict[str, bool] | None = None,
) -> DateColumnResult:
    """Read one column of dates or datetimes into Eightfold's text form.

    Day/month order for numeric `a/b/yyyy` values is decided per column by `decide_order`. When it stays
    undecided, a value with both parts <= 12 and different is `ambiguous` (never guessed); when evidence
    conflicts, each value is read only if it decides itself. `evidence` (merged `date_evidence` of the
    whole file) makes a slice of a streamed file decide as the whole file would.

    >>> normalise_dates(pl.Series(["31/01/2024", "02/03/2024"]), "date").values.to_list()
    ['2024-01-31', '2024-03-02']
    """
    raw = series.cast(pl.String)
    # Fast path: values already in Eightfold's form (or ISO with a space) need no regex work, only a
    # check that they are real dates. The rest are parsed once per unique value.
    canonical = _canonical(raw, kind)
    comp = _components(_unique_to_parse(raw, canonical))
    order, source, evidence = decide_order(comp["a"], comp["b"], date_order, evidence=evidence)

    a, b = pl.col("a"), pl.col("b")
    if order == "dmy":
        day, month = a, b
    elif order == "mdy":
        day, month = b, a
    else:
        # Undecided or conflicting: only values that decide themselves (or read the same both ways).
        day = pl.when((a > 12) | (a == b)).then(a).when(b > 12).then(b)
        month = pl.when((a > 12) | (a == b)).then(b).when(b > 12).then(a)
    ambiguous = a.is_between(1, 12) & b.is_between(1, 12) & (a != b) & pl.lit(order not in ("dmy", "mdy"))

    y = pl.coalesce("y_def", "y_num")
    m = pl.coalesce("m_def", month)
    d = pl.coalesce("d_def", day)
    date_text = pl.format(
        "{}-{}-{}",
        y.cast(pl.String).str.zfill(4),
        m.cast(pl.String).str.zfill(2),
        d.cast(pl.String).str.zfill(2),
    )
    parsed_date = date_text.str.to_date("%Y-%m-%d", strict=False)
    if kind == "date":
        value = parsed_date.dt.strftime("%Y-%m-%d")
    else:
        secs = pl.coalesce(
            pl.col("serial_secs"),
            pl.when(
                pl.col("hour").is_between(0, 23)
                & pl.col("mi").is_between(0, 59)
                & pl.col("ss").is_between(0, 59)
            ).then(pl.col("hour") * 3600 + pl.col("mi") * 60 + pl.col("ss")),
            pl.when(pl.col("hour").is_null()).then(0),  # date only → midnight
        )
        stamp = parsed_date.cast(pl.Datetime("us")) + pl.duration(seconds=secs)
        stamp = stamp - pl.duration(minutes=pl.coalesce(pl.col("tz_min"), 0))
        value = stamp.dt.strftime("%Y-%m-%dT%H:%M:%S")

    table = comp.with_columns(value=value, ambiguous=ambiguous.fill_null(False)).select(
        "raw", "value", "ambiguous"
    )
    if table.height:
        # Looked up rather than joined: a join keeps raw, value and flag side by side for every row.
        parsed = pl.col("raw").replace_strict(
            table["raw"], table["value"], default=None, return_dtype=pl.String
        )
        found = pl.DataFrame({"raw": raw, "canonical": canonical}).select(
            pl.coalesce("canonical", parsed).alias("values"),
            pl.col("raw").is_in(table.filter("ambiguous")["raw"].implode()).fill_null(False).alias("amb"),
        )
        values, amb = found["values"], found["amb"]
    else:
        amb = pl.repeat(False, len(raw), eager=True)
        values = canonical
    present = raw.is_not_null()
    invalid = present & values.is_null() & ~amb
    return DateColumnResult(
        values=values.alias(series.name),
        invalid=invalid.alias(series.name),
        ambiguous=amb.alias(series.name),
        order=order if raw.null_count() < len(raw) else "empty",
        order_source=source,
        evidence=evidence,
    )
