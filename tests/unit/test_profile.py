"""Column profiles: each kind is recognised from values alone, shares are over non-null values."""

from __future__ import annotations

import polars as pl
import pytest

from snapmap_pipeline.core.profile import ColumnProfile, profile_frame
from snapmap_pipeline.settings import Settings


def _profile(values: list[str | None], **kw: object) -> ColumnProfile:
    return profile_frame(pl.DataFrame({"c": values}, schema={"c": pl.String}), **kw)["c"]


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["ann@acme.com", "bob.lee@acme.co.uk", "c+tag@gmail.com", None], "email"),
        (["2024-03-01", "2023-12-31", "2024-01-15", "2024-01-15"], "date"),
        (["2024-03-01T09:30:00Z", "2024-03-01 09:30", "2024-03-02 17:05:09", None], "datetime"),
        (["+44 20 7946 0958", "(415) 555-1234", "555-123-4567", "+1 212 555 0100"], "phone"),
        (["3", "12", "-4", "12", "0", "7"], "integer"),
        (["1.5", "2", "3.25", "1,234.50", "1.5"], "decimal"),
        (["Yes", "no", "Y", "N", "yes", "No"], "boolean"),
        (["true", "false", "TRUE", "false"], "boolean"),
        (["E1001", "E1002", "E1003", "E1004", "E1005"], "id"),
        (["Sales team", "Hello world", "People Ops", "Sales team"], "text"),
        ([None, None, "  ", ""], "empty"),
    ],
)
def test_each_kind(values: list[str | None], kind: str) -> None:
    assert _profile(values).kind == kind


def test_shares_are_over_non_null_values() -> None:
    p = _profile(["a@acme.com", "b@acme.com", "not an email", None, None, " "])
    assert p.rows == 6
    assert p.null_share == pytest.approx(0.5)
    assert p.email_share == pytest.approx(2 / 3, abs=1e-3)
    assert p.text_share == pytest.approx(1 / 3, abs=1e-3)
    assert p.distinct == 3 and p.unique_share == pytest.approx(1.0)


def test_webmail_share_uses_the_settings_domains() -> None:
    values = ["a@gmail.com", "b@acme.com", "c@acme.com", "d@Yahoo.com"]
    assert _profile(values).webmail_share == pytest.approx(0.5)
    only_acme = Settings(webmail_domains="acme.com")
    assert _profile(values, settings=only_acme).webmail_share == pytest.approx(0.5)
    assert _profile(["x@acme.com"], settings=only_acme).webmail_share == pytest.approx(1.0)
    assert _profile(["x@acme.com"]).webmail_share == 0.0


@pytest.mark.parametrize(
    ("values", "day_first", "formats"),
    [
        (["13/02/2024", "01/02/2024", "05/06/2024"], True, ["dmy"]),
        (["02/13/2024", "01/02/2024", "05/06/2024"], False, ["mdy"]),
        (["01/02/2024", "05/06/2024", "11/12/2024"], None, ["dmy", "mdy"]),
        (["13/02/2024", "02/13/2024", "01/01/2024"], None, ["dmy", "mdy"]),
        (["31.12.2023", "01.02.2024", "5.6.24"], True, ["dotted"]),
        (["13-02-2024", "01-02-2024"], True, ["dmy"]),
    ],
)
def test_day_first_and_formats(values: list[str], day_first: bool | None, formats: list[str]) -> None:
    p = _profile(values)
    assert p.kind == "date"
    assert p.day_first is day_first
    assert p.date_formats == formats


def test_named_month_and_iso_formats_are_named() -> None:
    p = _profile(["1 Mar 2024", "March 3, 2024", "01-Apr-2024", "2024-05-01", "2024-05-02"])
    assert p.kind == "date"
    assert set(p.date_formats) == {"named_month", "iso"}
    assert p.date_formats[0] == "named_month"  # the most common first


def test_excel_serial_is_only_a_hint() -> None:
    p = _profile(["45000", "45001", "44000", "43000", "45000"])
    assert "excel_serial" in p.date_formats
    assert p.date_share == 0.0
    assert _profile(["12", "7", "3"]).date_formats == []


def test_id_like_needs_unique_compact_tokens_with_digits() -> None:
    assert _profile([f"EMP-{i:05d}" for i in range(50)]).id_like
    assert not _profile(["José", "Zoë", "Müller", "Ann"]).id_like  # unique words, no digits
    assert not _profile([f"Team {i}" for i in range(50)]).id_like  # spaces
    assert not _profile(["E1", "E1", "E2", "E2"]).id_like  # repeated
    assert not _profile([f"E{i}" if i % 2 else None for i in range(50)]).id_like  # half missing


def test_mean_length_and_to_dict() -> None:
    p = _profile(["ab", "abcd", None])
    assert p.mean_length == pytest.approx(3.0)
    d = p.to_dict()
    assert d["kind"] == p.kind and d["name"] == "c"
    assert set(d) >= {"null_share", "email_share", "date_formats", "day_first", "id_like", "text_share"}


def test_sample_limits_the_values_looked_at() -> None:
    values = ["a@acme.com"] * 10 + ["plain text"] * 90
    assert _profile(values, sample=10).kind == "email"
    assert _profile(values).kind == "text"


def test_every_column_and_empty_frames() -> None:
    df = pl.DataFrame({"a": ["1", "2"], "b": [None, None], "c": ["x@y.com", "z@y.com"]})
    profiles = profile_frame(df)
    assert list(profiles) == ["a", "b", "c"]
    assert profiles["b"].kind == "empty" and profiles["b"].null_share == 1.0
    assert profile_frame(pl.DataFrame()) == {}
    no_rows = profile_frame(pl.DataFrame({"a": []}, schema={"a": pl.String}))
    assert no_rows["a"].kind == "empty" and no_rows["a"].rows == 0


def test_non_string_columns_are_profiled_as_text_forms() -> None:
    df = pl.DataFrame({"n": [1, 2, 2, 3]})
    assert profile_frame(df)["n"].kind == "integer"
