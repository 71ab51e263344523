"""Seeded generator of realistic HR exports for the benchmarks: 30 vendor-style columns, non-ASCII
names, quoted commas, `R&D <Ops>`-style text, mixed date styles (per column) and ~1% bad rows.

Vectorised (numpy + polars), so 5M rows take seconds, not minutes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl

FIRST = [
    "José",
    "Müller",
    "Zoë",
    "Ann",
    "Bob",
    "Chloé",
    "Đorđe",
    "Łukasz",
    "Søren",
    "Ana",
    "Priya",
    "Wei",
    "Olúwa",
    "Émile",
    "Ingrid",
    "Mateo",
    "Aiko",
    "Fatima",
    "Jürgen",
    "Niamh",
]
LAST = [
    "García",
    "Smith",
    "Nguyễn",
    "O'Brien",
    "Schäfer",
    "Dubois",
    "Kowalski",
    "Rossi",
    "Øster",
    "Patel",
    "Li",
    "Brown",
    "van der Berg",
    "Silva",
    "Johansson",
    "Müller-Lüdenscheidt",
]
TITLES = [
    "Engineer",
    "Senior Engineer",
    "Analyst, Finance",
    "Manager",
    "Director",
    "HR Partner",
    "Data Scientist",
    "Sales Rep",
    "Designer",
    "Nurse",
]
DEPTS = ["R&D <Ops>", "Finance & Accounting", 'People "HR"', "Sales, EMEA", "Engineering", "Legal"]
LOCS = ["Berlin, DE", "São Paulo", "New York, NY", "Zürich", "London", "Kraków", "Paris", "Tokyo"]
COUNTRIES = ["DE", "BR", "US", "CH", "GB", "PL", "FR", "JP"]
GENDERS = ["Male", "Female", "M", "F", "Decline to self identify", ""]
TYPES = ["Full-time", "Part-time", "Contractor", "Intern"]
SKILLS = ["Python; SQL", "Excel|Negotiation", "Java, Kotlin", "Nursing", "", "Design; Figma; UX"]

HEADERS = [
    "Employee ID",
    "First Name",
    "Last Name",
    "Preferred Name",
    "Work Email",
    "Personal Email",
    "Phone",
    "Job Title",
    "Job Code",
    "Department",
    "Division",
    "Business Unit",
    "Company",
    "Location",
    "Country",
    "Hire Date",
    "Termination Date",
    "Manager ID",
    "Manager Name",
    "Manager Email",
    "Employee Type",
    "Job Level",
    "Gender",
    "Ethnicity",
    "Last Modified",
    "User ID",
    "Cost Center",
    "Skills",
    "LinkedIn URL",
    "Notes",
]


def generate(rows: int, seed: int = 42) -> pl.DataFrame:
    rng = np.random.default_rng(seed)

    def pick(pool: list[str]) -> pl.Series:
        return pl.Series(np.asarray(pool, dtype=object)[rng.integers(0, len(pool), rows)], dtype=pl.String)

    idx = pl.Series(np.arange(rows))
    first, last = pick(FIRST), pick(LAST)
    days = rng.integers(0, 9000, rows)
    hire = pl.Series(np.datetime64("1995-01-01") + days.astype("timedelta64[D]"))
    term = pl.Series(np.datetime64("2000-01-01") + rng.integers(0, 9000, rows).astype("timedelta64[D]"))
    has_term = rng.random(rows) < 0.1
    df = pl.DataFrame({"_i": idx, "_f": first, "_l": last, "_h": hire, "_t": term}).select(
        pl.format("E{}", pl.col("_i") + 100000).alias("Employee ID"),
        pl.col("_f").alias("First Name"),
        pl.col("_l").alias("Last Name"),
        pl.col("_f").alias("Preferred Name"),
        pl.format("user{}@acme-corp.com", pl.col("_i")).alias("Work Email"),
        pl.format("p{}@gmail.com", pl.col("_i")).alias("Personal Email"),
        pl.format("+49 30 {}", pl.col("_i") + 1000000).alias("Phone"),
        pl.lit(pick(TITLES)).alias("Job Title"),
        pl.format("JC{}", pl.col("_i") % 500).alias("Job Code"),
        pl.lit(pick(DEPTS)).alias("Department"),
        pl.lit(pick(["North", "South", "Global"])).alias("Division"),
        pl.lit(pick(["BU1", "BU2", "BU3"])).alias("Business Unit"),
        pl.lit("Acme Corp, Inc.").alias("Company"),
        pl.lit(pick(LOCS)).alias("Location"),
        pl.lit(pick(COUNTRIES)).alias("Country"),
        pl.col("_h").dt.strftime("%Y-%m-%d").alias("Hire Date"),
        pl.when(pl.lit(pl.Series(has_term)))
        .then(pl.col("_t").dt.strftime("%d/%m/%Y"))
        .alias("Termination Date"),
        pl.format("E{}", (pl.col("_i") // 10) + 100000).alias("Manager ID"),
        pl.concat_str(pl.col("_l"), pl.lit(", "), pl.col("_f")).alias("Manager Name"),
        pl.format("user{}@acme-corp.com", pl.col("_i") // 10).alias("Manager Email"),
        pl.lit(pick(TYPES)).alias("Employee Type"),
        pl.format("L{}", pl.col("_i") % 9).alias("Job Level"),
        pl.lit(pick(GENDERS)).alias("Gender"),
        pl.lit(pick(["Asian", "White", "Black", "Hispanic", ""])).alias("Ethnicity"),
        pl.col("_h").dt.strftime("%Y-%m-%dT08:30:00+01:00").alias("Last Modified"),
        pl.format("u{}", pl.col("_i")).alias("User ID"),
        pl.format("CC-{}", pl.col("_i") % 97).alias("Cost Center"),
        pl.lit(pick(SKILLS)).alias("Skills"),
        pl.format("https://www.linkedin.com/in/u{}", pl.col("_i")).alias("LinkedIn URL"),
        pl.lit(pick(["Transferred from R&D <Ops>", 'Line1, "quoted"', "", "Zoë's team"])).alias("Notes"),
    )
    # ~1% bad rows: blank emails, broken emails, duplicate ids, ambiguous-free but invalid dates
    bad = rng.random(rows)

    def where(lo: float, hi: float) -> pl.Expr:
        return pl.lit(pl.Series((bad >= lo) & (bad < hi)))

    df = df.with_columns(
        pl.when(where(0, 0.003))
        .then(None)
        .when(where(0.003, 0.006))
        .then(pl.lit("not-an-email"))
        .otherwise(pl.col("Work Email"))
        .alias("Work Email"),
        pl.when(where(0.006, 0.008))
        .then(pl.lit("E100000"))
        .otherwise(pl.col("Employee ID"))
        .alias("Employee ID"),
        pl.when(where(0.008, 0.01))
        .then(pl.lit("2021-13-45"))
        .otherwise(pl.col("Hire Date"))
        .alias("Hire Date"),
    )
    assert df.columns == HEADERS
    return df


def write(rows: int, path: Path, seed: int = 42) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        generate(rows, seed).write_csv(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("rows", type=int)
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    write(a.rows, a.out, a.seed)


if __name__ == "__main__":
    main()
