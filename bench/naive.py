"""The naive baseline: how the old system worked. pandas `read_csv`, per-row `apply` validation, and an
ElementTree tree written at the end. Kept deliberately plain; it is the yardstick, not a straw man.
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pandas as pd

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
COLUMNS = {
    "Employee ID": "employee_id",
    "First Name": "first_name",
    "Last Name": "last_name",
    "Work Email": "email",
    "Job Title": "title",
    "Hire Date": "hiring_date",
    "Manager ID": "manager_userid",
    "Last Modified": "last_activity_ts",
    "Department": "business_unit",
    "Location": "location",
}


def _validate(row: pd.Series) -> str:
    errors = []
    for col in ("Employee ID", "First Name", "Last Name", "Work Email"):
        if not isinstance(row[col], str) or not row[col].strip():
            errors.append(f"required:{col}")
    if isinstance(row["Work Email"], str) and not EMAIL.match(row["Work Email"]):
        errors.append("email")
    if isinstance(row["Hire Date"], str):
        try:
            datetime.strptime(row["Hire Date"], "%Y-%m-%d")
        except ValueError:
            errors.append("date")
    return ";".join(errors)


def run(src: Path, out: Path) -> dict:
    df = pd.read_csv(src, dtype=str, keep_default_na=False)
    df["_errors"] = df.apply(_validate, axis=1)
    valid = df[df["_errors"] == ""]
    root = ET.Element("EF_Employee_List")
    for _, row in valid.iterrows():
        rec = ET.SubElement(root, "EF_Employee")
        for col, tag in COLUMNS.items():
            value = row[col]
            if value:
                if tag == "email":
                    ET.SubElement(ET.SubElement(rec, "email_list"), "email").text = value
                else:
                    ET.SubElement(rec, tag).text = value
    ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)
    return {"rows": len(df), "valid": len(valid)}


if __name__ == "__main__":
    run(Path(sys.argv[1]), Path(sys.argv[2]))
