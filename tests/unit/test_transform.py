"""apply_mapping, the type-driven clean-up, the SQL models and their parameters, drop-time derivation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

from snapmap_pipeline.core.schema import EntitySchema, load_all, load_schema
from snapmap_pipeline.core.transform import (
    TransformReport,
    apply_mapping,
    bind_params,
    enum_lookup,
    named_columns,
    run_sql_model,
    transform,
    untrimmed_columns,
)
from snapmap_pipeline.errors import ConfigError, SnapMapError
from snapmap_pipeline.settings import PROJECT_ROOT, Settings

DROP = datetime(2024, 6, 1, 8, 30, 0)


@dataclass
class Item:
    source: str
    target: str | None


@dataclass
class Mapping:
    items: list[Item]


def _schema() -> EntitySchema:
    return EntitySchema.model_validate(
        {
            "entity": "thing",
            "title": "Thing",
            "csv_file": "THING-MAIN",
            "xml": {"root": "EF_Thing_List", "record": "EF_Thing"},
            "key": "ID",
            "operations": {"ingest": {"xml_required": ["ID"]}},
            "fields": [
                {"name": "ID", "xml": "id", "no_whitespace": True},
                {"name": "FIRST_NAME", "xml": "first_name"},
                {"name": "LAST_NAME", "xml": "last_name"},
                {"name": "EMAIL", "xml": "email", "type": "email"},
                {"name": "ACTIVE", "xml": "active", "type": "boolean"},
                {"name": "GENDER", "xml": "gender", "type": "enum", "values": ["male", "female", "opt out"]},
                {"name": "TAGS", "xml": "tags/tag", "type": "list"},
                {"name": "TS", "xml": "ts", "type": "datetime", "derive": "drop_time"},
                {"name": "FULL_NAME", "input_only": True},
            ],
        }
    )


def _settings(tmp_path: Path, sql: str = "SELECT * FROM mapped", synonyms: str | None = None) -> Settings:
    sql_dir = tmp_path / "sql"
    sql_dir.mkdir(exist_ok=True)
    (sql_dir / "thing.sql").write_text("-- thing: test model\n" + sql, encoding="utf-8")
    config_dir = tmp_path / "config"
    config_dir.mkdir(exist_ok=True)
    if synonyms is not None:
        (config_dir / "enum_synonyms.yaml").write_text(synonyms, encoding="utf-8")
    return Settings(sql_dir=sql_dir, config_dir=config_dir)


def _frame(**cols: list) -> pl.DataFrame:
    n = len(next(iter(cols.values())))
    return pl.DataFrame(
        {"_row": list(range(2, n + 2)), **cols}, schema_overrides=dict.fromkeys(cols, pl.String)
    )


# -- apply_mapping ---------------------------------------------------------------------------------------
def test_apply_mapping_renames_keeps_row_and_custom_and_drops_unmapped() -> None:
    df = _frame(**{"Emp No": ["1"], "Mail": ["a@b.com"], "Cost centre": ["C1"], "Junk": ["x"]})
    mapping = Mapping(
        [
            Item("Emp No", "ID"),
            Item("Mail", "EMAIL"),
            Item("Cost centre", "EFCUSTOM_STR_COST_CENTER"),
            Item("Junk", None),
        ]
    )
    out = apply_mapping(df, mapping, _schema())
    assert out.columns == ["_row", "ID", "EMAIL", "EFCUSTOM_STR_COST_CENTER"]
    assert out.row(0) == (2, "1", "a@b.com", "C1")
    assert out["_row"].dtype == pl.Int64


def test_apply_mapping_joins_several_sources_onto_a_list_field_skipping_blanks() -> None:
    df = _frame(T1=["a", None, " ", "x"], T2=["b", "c", None, " "])
    out = apply_mapping(df, Mapping([Item("T1", "TAGS"), Item("T2", "TAGS")]), _schema())
    assert out["TAGS"].to_list() == ["a,b", "c", None, "x"]


def test_apply_mapping_several_sources_onto_a_plain_field_first_non_blank_wins() -> None:
    df = _frame(A=["1", "", None], B=["9", "2", "3"])
    out = apply_mapping(df, Mapping([Item("A", "ID"), Item("B", "ID")]), _schema())
    assert out["ID"].to_list() == ["1", "2", "3"]


def test_apply_mapping_needs_row_numbers() -> None:
    with pytest.raises(SnapMapError) as err:
        apply_mapping(pl.DataFrame({"A": ["1"]}), Mapping([Item("A", "ID")]), _schema())
    assert err.value.code == "missing_row_column"


# -- generic clean-up ------------------------------------------------------------------------------------
def test_transform_normalises_by_type(tmp_path: Path) -> None:
    df = _frame(
        ID=[" 1 ", "2", "3", "4"],
        EMAIL=[" A.B@Example.COM ", "", "c@d.org", None],
        ACTIVE=["YES", " N ", "True", None],
        GENDER=["M", "Female", " OPT_OUT ", "Robot"],
        TAGS=["a; b|c", "x\ny", " , ", "one ,, two"],
    )
    settings = _settings(tmp_path, synonyms="male: [m]\nfemale: [f]\n")
    out, report = transform(df, _schema(), drop_time=DROP, settings=settings)
    assert out["ID"].to_list() == ["1", "2", "3", "4"]
    assert out["EMAIL"].to_list() == ["a.b@example.com", None, "c@d.org", None]
    assert out["ACTIVE"].to_list() == ["yes", "n", "true", None]
    assert out["GENDER"].to_list() == ["male", "female", "opt out", "Robot"]  # unknown kept for validate
    assert out["TAGS"].to_list() == ["a,b,c", "x,y", None, "one,two"]
    assert report.normalised["GENDER"] == 3
    assert report.normalised["ID"] == 1
    assert "FULL_NAME" not in out.columns


def test_enum_synonym_pointing_to_two_values_is_not_used() -> None:
    lookup = enum_lookup(["male", "female"], {"male": ["x", "m"], "female": ["x"]})
    assert "x" not in lookup
    assert lookup["m"] == "male"
    assert lookup["female"] == "female"


def test_exact_values_win_over_synonyms() -> None:
    lookup = enum_lookup(["a", "b"], {"a": ["b"]})
    assert lookup["b"] == "b"


# -- SQL models and parameters ---------------------------------------------------------------------------
def test_bind_params_quotes_values_and_leaves_literals_comments_and_casts_alone() -> None:
    sql = "SELECT :who AS w, ':who' AS lit, x::int -- :who\nFROM t /* :who */ WHERE n = :n AND f = :flag"
    bound = bind_params(sql, {"who": "O'Brien", "n": 3, "flag": True})
    assert bound == (
        "SELECT 'O''Brien' AS w, ':who' AS lit, x::int -- :who\nFROM t /* :who */ WHERE n = 3 AND f = TRUE"
    )


def test_injection_through_a_parameter_stays_one_string_value() -> None:
    attack = "x' AS a, 1 AS b FROM mapped; DROP TABLE mapped; --\\'"
    frame = pl.DataFrame({"_row": [2, 3], "A": ["p", "q"]})
    out = run_sql_model(frame, "SELECT *, :tenant AS TENANT FROM mapped", {"tenant": attack})
    assert out.columns == ["_row", "A", "TENANT"]
    assert out["TENANT"].to_list() == [attack, attack]


def test_missing_and_badly_typed_parameters_are_config_errors() -> None:
    with pytest.raises(ConfigError) as err:
        bind_params("SELECT :nope", {})
    assert err.value.code == "sql_param_missing"
    with pytest.raises(ConfigError) as err:
        bind_params("SELECT :x", {"x": ["a"]})
    assert err.value.code == "sql_param_type"


def test_tenant_params_reach_the_model(tmp_path: Path) -> None:
    sql = "SELECT * REPLACE (COALESCE(FIRST_NAME, :default_first) AS FIRST_NAME) FROM mapped"
    out, _ = transform(
        _frame(ID=["1", "2"], FIRST_NAME=["Ann", None]),
        _schema(),
        drop_time=DROP,
        params={"default_first": "N'A"},
        settings=_settings(tmp_path, sql),
    )
    assert out["FIRST_NAME"].to_list() == ["Ann", "N'A"]


def test_a_model_that_drops_rows_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "SELECT * FROM mapped WHERE ID = '1'")
    with pytest.raises(ConfigError) as err:
        transform(_frame(ID=["1", "2"]), _schema(), drop_time=DROP, settings=settings)
    assert err.value.code == "sql_model_rows"


def test_a_broken_model_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        transform(_frame(ID=["1"]), _schema(), drop_time=DROP, settings=_settings(tmp_path, "SELEC nonsense"))
    assert err.value.code == "sql_model_failed"


def test_missing_model_file(tmp_path: Path) -> None:
    settings = Settings(sql_dir=tmp_path, config_dir=tmp_path)
    with pytest.raises(ConfigError) as err:
        transform(_frame(ID=["1"]), _schema(), drop_time=DROP, settings=settings)
    assert err.value.code == "sql_model_missing"


# -- derivation ------------------------------------------------------------------------------------------
def test_drop_time_fills_blank_timestamps_and_counts_them(tmp_path: Path) -> None:
    df = _frame(ID=["1", "2", "3"], TS=["2024-01-01T00:00:00", None, " "])
    out, report = transform(df, _schema(), drop_time=DROP, settings=_settings(tmp_path))
    assert out["TS"].to_list() == ["2024-01-01T00:00:00", "2024-06-01T08:30:00", "2024-06-01T08:30:00"]
    assert report.derived == {"TS": 2}
    assert report.to_dict()["derived"] == {"TS": 2}


def test_drop_time_is_derived_when_the_column_is_not_mapped_and_aware_times_go_to_utc(tmp_path: Path) -> None:
    aware = datetime(2024, 6, 1, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    out, report = transform(_frame(ID=["1"]), _schema(), drop_time=aware, settings=_settings(tmp_path))
    assert out["TS"].to_list() == [aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")]
    assert report.derived == {"TS": 1}


def test_every_field_exists_for_the_model_and_input_only_fields_are_dropped(tmp_path: Path) -> None:
    out, _ = transform(_frame(ID=["1"]), _schema(), drop_time=DROP, settings=_settings(tmp_path))
    assert out.columns == ["_row", *[f.name for f in _schema().fields if not f.input_only]]
    assert isinstance(TransformReport().to_dict(), dict)


# -- the project's own models ----------------------------------------------------------------------------
def test_employee_model_splits_full_names_only_where_names_are_blank() -> None:
    schema = load_schema("employee")
    df = _frame(
        EMPLOYEE_ID=["1", "2", "3", "4", "5"],
        FULL_NAME=["Smith, John", "Jean-Pierre de la Fontaine", "Cher", "Doe, Jane", None],
        FIRST_NAME=[None, None, None, "Janet", "Solo"],
    )
    out, report = transform(df, schema, drop_time=DROP)
    assert out["FIRST_NAME"].to_list() == ["John", "Jean-Pierre", None, "Janet", "Solo"]
    assert out["LAST_NAME"].to_list() == ["Smith", "de la Fontaine", "Cher", "Doe", None]
    assert report.derived["FIRST_NAME"] == 2
    assert report.derived["LAST_NAME"] == 4
    assert "FULL_NAME" not in out.columns


def test_every_entity_has_a_model_with_a_header_that_runs_on_an_empty_mapping() -> None:
    sql_dir = PROJECT_ROOT / "dbt-free-sql"
    schemas = load_all()
    assert schemas
    for entity, schema in schemas.items():
        path = sql_dir / f"{entity}.sql"
        assert path.read_text(encoding="utf-8").startswith(f"-- {entity}:"), path.name
        out, _ = transform(_frame(**{schema.key: ["k1", "k2"]}), schema, drop_time=DROP)
        assert out.height == 2
        assert out["_row"].to_list() == [2, 3]


def test_output_is_trimmed_with_blanks_null_even_where_the_model_writes_them(tmp_path: Path) -> None:
    sql = (
        "SELECT * REPLACE (CASE WHEN ID = '1' THEN '  padded ' WHEN ID = '2' THEN '' "
        "ELSE FIRST_NAME END AS FIRST_NAME) FROM mapped"
    )
    out, _ = transform(
        _frame(ID=["1", "2", "3"], FIRST_NAME=["a", "b", " c "]),
        _schema(),
        drop_time=DROP,
        settings=_settings(tmp_path, sql),
    )
    assert out["FIRST_NAME"].to_list() == ["padded", None, "c"]


def test_validating_transform_output_as_clean_gives_the_same_result(tmp_path: Path) -> None:
    from snapmap_pipeline.core.validate import validate

    sql = "SELECT * REPLACE (CASE WHEN ID = '2' THEN ' x y ' ELSE LAST_NAME END AS LAST_NAME) FROM mapped"
    settings = _settings(tmp_path, sql)
    out, _ = transform(
        _frame(
            ID=[" 1", "2", "3 ", "3", ""],
            LAST_NAME=["a ", None, "  ", "b", "c"],
            EMAIL=[" A@Corp.example", "b@corp.example ", "bad", None, "c@corp.example"],
            TAGS=[" x ; y", "", None, "z,,", "w"],
        ),
        _schema(),
        drop_time=DROP,
        settings=settings,
    )
    fast = validate(out, _schema(), settings=settings, clean=True)
    full = validate(out, _schema(), settings=settings)
    assert fast.valid.equals(full.valid)
    assert fast.quarantine.equals(full.quarantine)
    assert fast.issues == full.issues
    assert fast.rows_valid + fast.rows_quarantined == 5


def test_untrimmed_columns_finds_only_the_padded_ones() -> None:
    frame = pl.DataFrame(
        {"A": ["x", None, "y z"], "B": ["x", " y", None], "C": ["\u00a0x", "y", "z"], "N": [1, 2, 3]}
    )
    assert untrimmed_columns(frame, ["A", "B", "C", "N", "MISSING"]) == ["B", "C", "N"]


def test_named_columns_are_the_ones_a_model_names_or_all_when_it_picks_by_pattern() -> None:
    cols = ["_row", "ID", "FIRST_NAME", "LAST_NAME", "FIRST_NAME_2"]
    sql = "SELECT * REPLACE (upper(first_name) AS FIRST_NAME) FROM mapped"
    assert named_columns(sql, cols) == {"FIRST_NAME"}
    assert named_columns("SELECT COLUMNS('^.*NAME$') FROM mapped", cols) == set(cols)


@pytest.mark.parametrize(
    ("sql", "last_name", "nick"),
    [
        ("SELECT * REPLACE (COALESCE(FIRST_NAME, 'n/a') AS FIRST_NAME) FROM mapped", True, False),
        # reorders the rows: the columns it does not name must still follow them
        (
            "SELECT * REPLACE (COALESCE(FIRST_NAME, 'n/a') AS FIRST_NAME) FROM mapped ORDER BY ID DESC",
            True,
            False,
        ),
        # drops a column it names, adds one
        ("SELECT * EXCLUDE (LAST_NAME), COALESCE(FIRST_NAME, 'n/a') AS NICK FROM mapped", False, True),
    ],
)
def test_columns_a_model_does_not_name_pass_through_aligned_with_their_rows(
    tmp_path: Path, sql: str, last_name: bool, nick: bool
) -> None:
    frame = _frame(
        ID=["1", "2", "3"],
        FIRST_NAME=["a", None, "c"],
        LAST_NAME=["x", "y", None],
        EMAIL=["A@b.example", "c@D.example", None],
        GENDER=["Male", "female", None],
    )
    out, _ = transform(frame, _schema(), drop_time=DROP, settings=_settings(tmp_path, sql))
    rows = out.sort("_row")
    assert rows["ID"].to_list() == ["1", "2", "3"]
    assert rows["EMAIL"].to_list() == ["a@b.example", "c@d.example", None]
    assert rows["GENDER"].to_list() == ["male", "female", None]
    names = rows["NICK"] if nick else rows["FIRST_NAME"]
    assert names.to_list() == ["a", "n/a", "c"]
    assert ("LAST_NAME" in out.columns) is last_name
    if last_name:
        assert rows["LAST_NAME"].to_list() == ["x", "y", None]
