"""Date and datetime reading: every accepted form, the day/month decision, and what is refused."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone

import polars as pl
import pytest

from snapmap_pipeline.core.dates import decide_order, normalise_dates


def _read(values: list[str | None], kind: str = "date", order: str | None = None) -> list[str | None]:
    return normalise_dates(pl.Series("d", values, dtype=pl.String), kind, date_order=order).values.to_list()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-05", date(2024, 3, 5)),
        ("2024/3/5", date(2024, 3, 5)),
        ("2024.03.05", date(2024, 3, 5)),
        ("20240305", date(2024, 3, 5)),
        ("5 Jan 2024", date(2024, 1, 5)),
        ("January 5th, 2024", date(2024, 1, 5)),
        ("Mon, 5 Jan 2024", date(2024, 1, 5)),
        ("05-Jan-2024", date(2024, 1, 5)),
        ("2024-Jan-05", date(2024, 1, 5)),
        ("5. März 2024", date(2024, 3, 5)),
        ("12 Dezember 2023", date(2023, 12, 12)),
        ("1er janvier 2024", date(2024, 1, 1)),
        ("14 févr. 2024", date(2024, 2, 14)),
        ("Sept 30 2024", date(2024, 9, 30)),
    ],
)
def test_unambiguous_forms_are_read(text: str, expected: date) -> None:
    assert _read([text]) == [expected.isoformat()]


def test_excel_serials_in_range_are_read_with_their_time() -> None:
    base = date(1899, 12, 30)
    assert _read(["45000"]) == [(base + timedelta(days=45000)).isoformat()]
    stamp = datetime(1899, 12, 30) + timedelta(days=45000, hours=12)
    assert _read(["45000.5"], "datetime") == [stamp.strftime("%Y-%m-%dT%H:%M:%S")]


def test_excel_serials_out_of_range_are_invalid() -> None:
    res = normalise_dates(pl.Series(["99999", "1234"]), "date")
    assert res.values.to_list() == [None, None]
    assert res.invalid.to_list() == [True, True]


def test_zoned_timestamps_are_converted_to_utc() -> None:
    cases = {
        "2024-03-05T10:00:00+01:00": datetime(2024, 3, 5, 10, tzinfo=timezone(timedelta(hours=1))),
        "2024-03-05 23:30:00 -0530": datetime(
            2024, 3, 5, 23, 30, tzinfo=timezone(-timedelta(hours=5, minutes=30))
        ),
        "2024-03-05T23:30:00Z": datetime(2024, 3, 5, 23, 30, tzinfo=UTC),
        "2024-03-05 08:15 UTC": datetime(2024, 3, 5, 8, 15, tzinfo=UTC),
    }
    got = _read(list(cases), "datetime")
    expected = [d.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") for d in cases.values()]
    assert got == expected


def test_a_date_field_keeps_the_written_day_of_a_zoned_timestamp() -> None:
    assert _read(["2024-03-05T23:30:00-05:00"], "date") == ["2024-03-05"]


def test_naive_times_and_am_pm() -> None:
    got = _read(
        ["2024-03-05 10:00 PM", "2024-03-05 12:05 am", "2024-03-05 07:08:09", "2024-03-05"], "datetime"
    )
    assert got == ["2024-03-05T22:00:00", "2024-03-05T00:05:00", "2024-03-05T07:08:09", "2024-03-05T00:00:00"]


def test_impossible_and_unreadable_values_are_invalid_not_guessed() -> None:
    res = normalise_dates(pl.Series(["2024-02-30", "garbage", "2024-13-01", "25:00 2024", None]), "date")
    assert res.values.to_list() == [None] * 5
    assert res.invalid.to_list() == [True, True, True, True, False]
    assert res.ambiguous.to_list() == [False] * 5
    bad_time = normalise_dates(pl.Series(["2024-03-05 25:61"]), "datetime")
    assert bad_time.invalid.to_list() == [True]


def test_first_part_over_12_decides_day_first_for_the_column() -> None:
    res = normalise_dates(pl.Series(["31/01/2024", "02/03/2024", "05.06.2024"]), "date")
    assert (res.order, res.order_source) == ("dmy", "evidence")
    assert res.values.to_list() == ["2024-01-31", "2024-03-02", "2024-06-05"]


def test_second_part_over_12_decides_month_first_for_the_column() -> None:
    res = normalise_dates(pl.Series(["01/31/2024", "02/03/2024"]), "date")
    assert (res.order, res.order_source) == ("mdy", "evidence")
    assert res.values.to_list() == ["2024-01-31", "2024-02-03"]


def test_without_evidence_or_config_ambiguous_values_are_flagged_not_read() -> None:
    res = normalise_dates(pl.Series(["02/03/2024", "04/04/2024", "2024-05-06"]), "date")
    assert res.order == "undecided"
    assert res.values.to_list() == [None, "2024-04-04", "2024-05-06"]  # 04/04 reads the same either way
    assert res.ambiguous.to_list() == [True, False, False]
    assert res.invalid.to_list() == [False, False, False]


def test_configured_order_decides_when_values_do_not() -> None:
    assert _read(["02/03/2024"], order="dmy") == ["2024-03-02"]
    assert _read(["02/03/2024"], order="mdy") == ["2024-02-03"]


def test_evidence_wins_over_configuration() -> None:
    res = normalise_dates(pl.Series(["31/01/2024", "02/03/2024"]), "date", date_order="mdy")
    assert (res.order, res.order_source) == ("dmy", "evidence")


def test_conflicting_evidence_reads_only_self_deciding_values() -> None:
    res = normalise_dates(pl.Series(["13/02/2024", "02/13/2024", "03/04/2024"]), "date")
    assert res.order == "conflict"
    assert res.values.to_list() == ["2024-02-13", "2024-02-13", None]
    assert res.ambiguous.to_list() == [False, False, True]


def test_decide_order_reports_evidence() -> None:
    order, source, evidence = decide_order(pl.Series([13, 1]), pl.Series([1, 2]), None)
    assert (order, source, evidence) == ("dmy", "evidence", {"dmy": True, "mdy": False})
    assert (
        decide_order(pl.Series([None], dtype=pl.Int32), pl.Series([None], dtype=pl.Int32), "dmy")[0] == "iso"
    )


def test_two_digit_years_follow_the_posix_pivot() -> None:
    assert _read(["31/01/24", "31/01/69", "5 Jan 68"]) == ["2024-01-31", "1969-01-31", "2068-01-05"]


def test_empty_column() -> None:
    res = normalise_dates(pl.Series("d", [None, None], dtype=pl.String), "datetime")
    assert res.order == "empty"
    assert res.values.to_list() == [None, None]
    assert not res.invalid.any()


@pytest.mark.parametrize(
    ("fmt", "order"),
    [("%Y-%m-%d", None), ("%d/%m/%Y", "dmy"), ("%m/%d/%Y", "mdy"), ("%d.%m.%Y", "dmy"), ("%d %B %Y", None)],
)
def test_round_trip_against_python_formatting(fmt: str, order: str | None) -> None:
    rng = random.Random(7)
    days = [date(1950, 1, 1) + timedelta(days=rng.randrange(0, 55_000)) for _ in range(300)]
    texts = [d.strftime(fmt) for d in days]
    assert _read(texts, order=order) == [d.isoformat() for d in days]
