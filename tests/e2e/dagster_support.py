"""Helpers shared by the e2e tests (input builders)."""

from __future__ import annotations

WORKDAY_HEADER = "Employee ID,Legal First Name,Legal Last Name,Primary Work Email,Business Title,Hire Date\n"


def workday(*rows: tuple[str, str, str, str, str, str]) -> str:
    """A small Workday-style worker export."""
    return WORKDAY_HEADER + "".join(",".join(r) + "\n" for r in rows)
