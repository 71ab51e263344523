"""Validation: every rule fails and passes, quarantine shape, duplicates, references, the contract, and
row conservation on every frame."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snapmap_pipeline.core.schema import EntitySchema, load_schema
from snapmap_pipeline.core.validate import ValidationResult, attach_source, build_contract, validate
from snapmap_pipeline.errors import ConfigError
from snapmap_pipeline.settings import Settings

TS = "2024-06-01T08:30:00"


def _schema() -> EntitySchema:
    return EntitySchema.model_validate(
        {
            "entity": "thing",
            "title": "Thing",
            "csv_file": "THING-MAIN",
            "xml": {"root": "EF_Thing_List", "record": "EF_Thing"},
            "key": "ID",
            "operations": {
                "ingest": {"xml_required": ["ID", "NAME"]},
                "update": {"xml_required": ["ID"]},
                "delete": {"fields": ["ID"], "xml_required": ["ID"]},
            },
            "fields": [
                {"name": "ID", "xml": "id", "no_whitespace": True, "key_like": True},
                {"name": "NAME", "xml": "name", "max_length": 5},
                {"name": "MAIL", "xml": "mail", "type": "email"},
                {"name": "ON", "xml": "on", "type": "boolean"},
                {"name": "N", "xml": "n", "type": "integer"},
                {"name": "X", "xml": "x", "type": "float"},
                {"name": "KIND", "xml": "kind", "type": "enum", "values": ["a", "b c"]},
                {"name": "DAY", "xml": "day", "type": "date"},
                {"name": "AT", "xml": "at", "type": "datetime"},
                {"name": "TAGS", "xml": "tags/tag", "type": "list", "max_length": 3},
            ],
        }
    )


def _settings(tmp_path: Path, yaml_text: str | None = None, **kw: object) -> Settings:
    if yaml_text is not None:
        (tmp_path / "validation.yaml").write_text(yaml_text, encoding="utf-8")
    return Settings(config_dir=tmp_path, **kw)


def _frame(**cols: list) -> pl.DataFrame:
    n = len(next(iter(cols.values())))
    return pl.DataFrame(
        {"_row": list(range(2, n + 2)), **cols}, schema_overrides=dict.fromkeys(cols, pl.String)
    )


def _run(frame: pl.DataFrame, schema: EntitySchema | None = None, **kw: object) -> ValidationResult:
    res = validate(frame, schema or _schema(), **kw)  # type: ignore[arg-type]
    # Row conservation, on every test frame.
    assert res.rows_in == frame.height == res.rows_valid + res.rows_quarantined
    assert res.valid.height == res.rows_valid
    assert res.quarantine.height == res.rows_quarantined
    assert res.quarantine["_row"].n_unique() == res.quarantine.height
    assert set(res.valid["_row"]).isdisjoint(set(res.quarantine["_row"]))
    return res


def _rules(res: ValidationResult) -> dict[int, str]:
    return dict(zip(res.quarantine["_row"].to_list(), res.quarantine["_rule"].to_list(), strict=True))


def _one_column(column: str, values: list[str | None], tmp_path: Path) -> ValidationResult:
    n = len(values)
    frame = _frame(ID=[f"k{i}" for i in range(n)], NAME=["nm"] * n, **{column: values})
    return _run(frame, settings=_settings(tmp_path))


# -- each rule, failing and passing ------------------------------------------------------------------------
def test_required_and_non_blank(tmp_path: Path) -> None:
    res = _run(_frame(ID=["1", "2", "3"], NAME=["ok", "  ", None]), settings=_settings(tmp_path))
    assert _rules(res) == {3: "required", 4: "required"}
    assert res.valid["_row"].to_list() == [2]


def test_required_column_absent_quarantines_every_row(tmp_path: Path) -> None:
    res = _run(_frame(ID=["1", "2"]), settings=_settings(tmp_path))
    assert res.rows_valid == 0
    assert set(res.quarantine["_column"]) == {"NAME"}


def test_required_depends_on_the_operation(tmp_path: Path) -> None:
    res = _run(_frame(ID=["1"], NAME=[None]), operation="update", settings=_settings(tmp_path))
    assert res.rows_valid == 1


def test_max_length(tmp_path: Path) -> None:
    res = _run(_frame(ID=["1", "2"], NAME=["12345", "123456"]), settings=_settings(tmp_path))
    assert _rules(res) == {3: "max_length"}


def test_max_length_of_list_items(tmp_path: Path) -> None:
    res = _one_column("TAGS", ["abc,de", "abcd,e"], tmp_path)
    assert _rules(res) == {3: "max_length"}


def test_email_syntax(tmp_path: Path) -> None:
    values = [
        "a.b@acme.com",
        "A@Acme.COM",
        "josé@bücher.de",
        "no-at-sign",
        "a@b",
        "x@y..com",
        "a b@c.com",
        None,
    ]
    res = _one_column("MAIL", values, tmp_path)
    assert _rules(res) == {5: "email", 6: "email", 7: "email", 8: "email"}
    valid = dict(zip(res.valid["_row"].to_list(), res.valid["MAIL"].to_list(), strict=True))
    assert valid[3] == "a@acme.com"  # lower-cased
    assert valid[4] == "josé@bücher.de"  # internationalised: email-validator decides
    assert valid[9] is None


def test_special_use_domains_follow_email_validator(tmp_path: Path) -> None:
    res = _one_column("MAIL", ["a@host.localhost", "a@host.com"], tmp_path)
    assert _rules(res) == {2: "email"}


def test_exact_possible_values(tmp_path: Path) -> None:
    res = _one_column("KIND", ["a", "b c", "B C", "z", None], tmp_path)
    assert _rules(res) == {4: "enum", 5: "enum"}


def test_integers(tmp_path: Path) -> None:
    res = _one_column("N", ["1", "+7", "-3", "10.0", "1.5", "12a", "1,000", None], tmp_path)
    assert _rules(res) == {6: "integer", 7: "integer", 8: "integer"}
    assert res.valid["N"].to_list() == ["1", "7", "-3", "10", None]


def test_floats(tmp_path: Path) -> None:
    res = _one_column("X", ["1.5", "-2", ".5", "1e3", "1,5", "abc", "NaN", "inf"], tmp_path)
    assert _rules(res) == {6: "float", 7: "float", 8: "float", 9: "float"}


def test_booleans(tmp_path: Path) -> None:
    res = _one_column("ON", ["yes", "No", "Y", "n", "1", "0", "True", "FALSE", "maybe", None], tmp_path)
    assert _rules(res) == {10: "boolean"}
    expected = ["true", "false", "true", "false", "true", "false", "true", "false", None]
    assert res.valid["ON"].to_list() == expected


def test_boolean_spellings_come_from_the_data_file(tmp_path: Path) -> None:
    cfg = 'boolean_values:\n  "true": [oui]\n  "false": [non]\n'
    frame = _frame(ID=["1", "2", "3"], NAME=["n"] * 3, ON=["oui", "non", "yes"])
    res = _run(frame, settings=_settings(tmp_path, cfg))
    assert _rules(res) == {4: "boolean"}
    assert res.valid["ON"].to_list() == ["true", "false"]


def test_ids_without_whitespace(tmp_path: Path) -> None:
    res = _run(_frame(ID=["a1", "a 2", "a\t3"], NAME=["n"] * 3), settings=_settings(tmp_path))
    assert _rules(res) == {3: "no_whitespace", 4: "no_whitespace"}


def test_dates_are_normalised_and_bad_ones_quarantined(tmp_path: Path) -> None:
    res = _one_column("DAY", ["31/01/2024", "02/03/2024", "2024-02-30", "5 Jan 2024"], tmp_path)
    assert _rules(res) == {4: "date"}
    assert res.valid["DAY"].to_list() == ["2024-01-31", "2024-03-02", "2024-01-05"]
    assert res.date_orders["DAY"] == "dmy"


def test_datetimes_are_normalised(tmp_path: Path) -> None:
    res = _one_column("AT", ["2024-03-05 10:00:00+01:00", "2024-03-05", "nonsense"], tmp_path)
    assert _rules(res) == {4: "date"}
    assert res.valid["AT"].to_list() == ["2024-03-05T09:00:00", "2024-03-05T00:00:00"]


def test_ambiguous_dates_are_quarantined_unless_configured(tmp_path: Path) -> None:
    frame = _frame(ID=["1", "2"], NAME=["n", "n"], DAY=["02/03/2024", "2024-01-01"])
    res = _run(frame, settings=_settings(tmp_path))
    assert _rules(res) == {2: "ambiguous_date"}
    assert res.date_orders["DAY"] == "undecided"
    by_arg = _run(frame, settings=_settings(tmp_path), date_order="mdy")
    assert by_arg.valid["DAY"].to_list() == ["2024-02-03", "2024-01-01"]
    by_setting = _run(frame, settings=_settings(tmp_path, date_order="dmy"))
    assert by_setting.valid["DAY"].to_list() == ["2024-03-02", "2024-01-01"]
    assert {"level": "info", "rule": "date_order", "column": "DAY", "order": "dmy", "source": "config"} in (
        by_setting.issues
    )


def test_a_bad_date_order_setting_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        validate(_frame(ID=["1"]), _schema(), settings=_settings(tmp_path), date_order="ymd")


# -- keys and uniqueness -----------------------------------------------------------------------------------
def test_duplicate_keys_keep_the_first_and_name_it(tmp_path: Path) -> None:
    frame = _frame(ID=["a", "b", "a", "a"], NAME=["n1", "n2", "n3", "n4"])
    res = _run(frame, settings=_settings(tmp_path))
    assert res.valid["_row"].to_list() == [2, 3]
    assert _rules(res) == {4: "duplicate_key", 5: "duplicate_key"}
    assert all("row 2 was kept" in m for m in res.quarantine["_message"])


def test_the_first_row_that_passes_everything_else_is_the_one_kept(tmp_path: Path) -> None:
    frame = _frame(ID=["a", "a", "a"], NAME=["way too long", "ok", "ok2"])
    res = _run(frame, settings=_settings(tmp_path))
    assert res.valid["_row"].to_list() == [3]
    assert _rules(res) == {2: "max_length; duplicate_key", 4: "duplicate_key"}
    assert "row 3 was kept" in res.quarantine.filter(pl.col("_row") == 4)["_message"][0]


def test_every_failed_rule_is_listed_in_the_same_order_in_all_three_columns(tmp_path: Path) -> None:
    frame = _frame(ID=["a b"], NAME=["toolongname"], ON=["maybe"], KIND=["z"])
    res = _run(frame, settings=_settings(tmp_path))
    row = res.quarantine.row(0, named=True)
    rules = row["_rule"].split("; ")
    columns = row["_column"].split("; ")
    messages = row["_message"].split("; ")
    assert sorted(rules) == sorted(["no_whitespace", "max_length", "boolean", "enum"])
    assert len(rules) == len(columns) == len(messages)
    for rule, column, message in zip(rules, columns, messages, strict=True):
        assert message.startswith(column)
        assert {"no_whitespace": "ID", "max_length": "NAME", "boolean": "ON", "enum": "KIND"}[rule] == column


# -- employee rules from the data file ---------------------------------------------------------------------
def _employee(**cols: list) -> pl.DataFrame:
    n = len(cols["EMPLOYEE_ID"])
    base = {"FIRST_NAME": ["F"] * n, "LAST_NAME": ["L"] * n, "LAST_ACTIVITY_TS": [TS] * n}
    return _frame(**{**base, **cols})


def test_employee_email_on_a_company_domain() -> None:
    frame = _employee(EMPLOYEE_ID=["1", "2", "3"], EMAIL=["a@acme.com", "b@gmail.com", "c@Yahoo.com"])
    res = _run(frame, load_schema("employee"))
    assert _rules(res) == {3: "company_email", 4: "company_email"}


def test_personal_email_may_be_webmail() -> None:
    frame = _employee(EMPLOYEE_ID=["1"], EMAIL=["a@acme.com"], PERSONAL_EMAIL=["me@gmail.com"])
    assert _run(frame, load_schema("employee")).rows_valid == 1


def test_employee_emails_unique_across_the_file() -> None:
    frame = _employee(EMPLOYEE_ID=["1", "2", "3"], EMAIL=["a@acme.com", "b@acme.com", "A@acme.com"])
    res = _run(frame, load_schema("employee"))
    assert _rules(res) == {4: "duplicate_email"}
    assert "row 2 was kept" in res.quarantine["_message"][0]


def test_unknown_manager_is_a_warning_not_a_rejection() -> None:
    frame = _employee(
        EMPLOYEE_ID=["1", "2", "3"],
        EMAIL=["a@acme.com", "b@acme.com", "c@acme.com"],
        MANAGER_ID=[None, "1", "99"],
    )
    schema = load_schema("employee")
    res = _run(frame, schema)
    assert res.rows_valid == 3
    warning = [i for i in res.issues if i["rule"] == "unknown_reference"]
    assert warning and warning[0]["count"] == 1 and warning[0]["column"] == "MANAGER_ID"
    known = _run(frame, schema, known_ids={"99"})
    assert not [i for i in known.issues if i["rule"] == "unknown_reference"]


def test_delete_checks_only_the_fields_it_carries() -> None:
    frame = _employee(EMPLOYEE_ID=["1"], EMAIL=["a@acme.com"], HIRING_DATE=["not a date"])
    res = _run(frame, load_schema("employee"), operation="delete")
    assert res.rows_valid == 1
    assert res.valid.columns == ["_row", "EMPLOYEE_ID", "EMAIL"]


def test_custom_columns_are_validated_by_their_type(tmp_path: Path) -> None:
    frame = _employee(
        EMPLOYEE_ID=["1", "2"], EMAIL=["a@acme.com", "b@acme.com"], EFCUSTOM_INT_LEVEL=["3", "x"]
    )
    res = _run(frame, load_schema("employee"))
    assert _rules(res) == {3: "integer"}
    assert "EFCUSTOM_INT_LEVEL" in res.valid.columns


# -- outputs ------------------------------------------------------------------------------------------------
def test_issues_count_rules_and_to_dict_has_no_frames(tmp_path: Path) -> None:
    res = _run(_frame(ID=["1", "2"], NAME=[None, None]), settings=_settings(tmp_path))
    assert res.rule_counts == {"required": 2}
    assert {"level": "error", "rule": "required", "column": "NAME", "count": 2} in res.issues
    d = res.to_dict()
    assert d["rows_in"] == 2 and d["rows_quarantined"] == 2
    assert not any(isinstance(v, pl.DataFrame) for v in d.values())


def test_attach_source_gives_original_columns_and_reasons(tmp_path: Path) -> None:
    source = _frame(**{"Emp No": ["1", "2", "3"], "Name": ["ok", None, "x"]})
    mapped = source.rename({"Emp No": "ID", "Name": "NAME"})
    res = _run(mapped, settings=_settings(tmp_path))
    out = attach_source(source, res.quarantine)
    assert out.columns == ["Emp No", "Name", "_row", "_rule", "_column", "_message"]
    assert out.row(0, named=True)["Emp No"] == "2"
    assert out["_rule"].to_list() == ["required"]


def test_empty_frame(tmp_path: Path) -> None:
    frame = pl.DataFrame(schema={"_row": pl.Int64, "ID": pl.String, "NAME": pl.String})
    res = _run(frame, settings=_settings(tmp_path))
    assert res.rows_in == 0


# -- the contract --------------------------------------------------------------------------------------------
def test_contract_accepts_the_valid_frame_and_rejects_a_tampered_one(tmp_path: Path) -> None:
    import pandera.errors

    frame = _frame(
        ID=["1", "2", "1"],
        NAME=["a", "b", "c"],
        ON=["Yes", "n", "y"],
        N=["1", "2.0", "3"],
        KIND=["a", "b c", "a"],
        DAY=["31/12/2024", "01/02/2024", "2024-01-01"],
        AT=["2024-01-01 10:00", "2024-01-01T00:00:00Z", None],
    )
    res = _run(frame, settings=_settings(tmp_path))
    contract = build_contract(_schema(), "ingest")
    contract.validate(res.valid, lazy=True)
    tampered = res.valid.with_columns(
        pl.when(pl.col("_row") == 2).then(pl.lit("31/12/2024")).otherwise(pl.col("DAY")).alias("DAY"),
        pl.lit("maybe").alias("ON"),
    )
    with pytest.raises(pandera.errors.SchemaErrors) as err:
        contract.validate(tampered, lazy=True)
    failed = set(err.value.failure_cases["column"].to_list())
    assert {"DAY", "ON"} <= failed
    duplicated = pl.concat([res.valid, res.valid.with_columns(pl.col("_row") + 100)])
    with pytest.raises(pandera.errors.SchemaErrors):
        contract.validate(duplicated, lazy=True)


# -- property: any input keeps every row accounted for ----------------------------------------------------
_cells = st.one_of(
    st.none(), st.text(max_size=8), st.sampled_from(["a", "b c", "yes", "1", "02/03/2024", " "])
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["k1", "k2", "k 3", "", None]), _cells, _cells, _cells, _cells, _cells),
        max_size=12,
    )
)
def test_any_frame_conserves_rows_and_the_valid_part_meets_the_contract(
    rows: list[tuple], tmp_path: Path
) -> None:
    names = ["ID", "NAME", "ON", "KIND", "DAY", "MAIL"]
    frame = (
        _frame(**{n: [r[i] for r in rows] for i, n in enumerate(names)})
        if rows
        else pl.DataFrame(schema={"_row": pl.Int64, **dict.fromkeys(names, pl.String)})
    )
    res = _run(frame, settings=_settings(tmp_path))
    for row in res.quarantine.iter_rows(named=True):
        parts = [row[c].split("; ") for c in ("_rule", "_column", "_message")]
        assert len(parts[0]) == len(parts[1]) == len(parts[2]) >= 1
    build_contract(_schema(), "ingest").validate(res.valid, lazy=True)


def test_typed_list_items_must_be_in_eightfold_form(tmp_path: Path) -> None:
    frame = _employee(
        EMPLOYEE_ID=["1", "2", "3"],
        EMAIL=["a@acme.com", "b@acme.com", "c@acme.com"],
        EFCUSTOMLIST_INT_CODES=["1,2,3", "4,x", None],
    )
    res = _run(frame, load_schema("employee"), settings=_settings(tmp_path))
    assert _rules(res) == {3: "list_item"}
