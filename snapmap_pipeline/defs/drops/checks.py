"""Checks that stop bad data going out. Blocking ones (ERROR) keep downstream assets from running.

The blocking checks run inside their asset's step (`check_specs`): a file's run is 8 step processes
instead of 12, and each check sees the values its asset just made instead of reading them back. The
quality suite stays a step of its own, because it is heavy and non-blocking and runs beside the export.
"""

from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from snapmap_pipeline.core.schema import load_schema
from snapmap_pipeline.defs.drops.common import frame_markdown
from snapmap_pipeline.defs.drops.partitions import drops_partitions
from snapmap_pipeline.defs.resources import ArtifactsResource
from snapmap_pipeline.settings import get_settings

MAX_CASES = 20


def _blocking(name: str, asset: str, description: str) -> dg.AssetCheckSpec:
    """A per-partition check that stops downstream assets when it fails."""
    return dg.AssetCheckSpec(
        name, asset=asset, blocking=True, partitions_def=drops_partitions, description=description
    )


MAPPING_REVIEWED = _blocking(
    "mapping_reviewed",
    "field_mapping",
    "Every field the output requires is mapped, and every mapping is confident or overridden.",
)
CONTRACT = _blocking("contract", "validated_frame", "The valid rows meet the entity's pandera contract.")
ROW_CONSERVATION = _blocking(
    "row_conservation",
    "validated_frame",
    "Rows in = rows valid + rows quarantined; no row lost, none counted twice.",
)
XML_VALID = _blocking("xml_valid", "eightfold_xml", "The XML is valid against the entity's XSD.")


def mapping_reviewed(field_mapping: dict[str, Any]) -> dg.AssetCheckResult:
    schema = load_schema(field_mapping["entity"])
    reasons = field_mapping["mapping"].review_reasons(schema, field_mapping["operation"], get_settings())
    tenant = field_mapping["tenant"] or "<tenant>"
    how = (
        f"Set the mapping in config/tenants/{tenant}.yaml (columns: {{'<source header>': <FIELD>}}) or run "
        f"`snapmap map <file> --tenant {tenant} --set '<source header>=<FIELD>'`, then re-execute this "
        f"partition (all steps) from the UI."
    )
    return dg.AssetCheckResult(
        check_name=MAPPING_REVIEWED.name,
        asset_key=MAPPING_REVIEWED.asset_key,
        passed=not reasons,
        severity=dg.AssetCheckSeverity.ERROR,
        description=None if not reasons else f"{len(reasons)} mapping issue(s) need review. {how}",
        metadata={
            "to review": dg.MetadataValue.json([str(r) for r in reasons]),
            "how to fix": how,
            "issues": len(reasons),
        },
    )


def _contract_cases(contract: Any, frame: pl.DataFrame) -> pl.DataFrame | None:
    """The pandera failure cases of `frame` (None when it meets the contract), values masked."""
    from pandera.errors import SchemaErrors

    try:
        contract.validate(frame, lazy=True)  # the contract includes `_row`, the row a person sees
    except SchemaErrors as exc:
        cases = (
            pl.from_pandas(exc.failure_cases)
            if not isinstance(exc.failure_cases, pl.DataFrame)
            else exc.failure_cases
        )
        if not get_settings().preview and "failure_case" in cases.columns:
            cases = cases.with_columns(pl.lit("•••").alias("failure_case"))  # values are personal data
        return cases.cast(pl.String)
    return None


def _contract_result(
    cases: pl.DataFrame | None, failures: int, rows_checked: int, entity: str
) -> dg.AssetCheckResult:
    if cases is None or failures == 0:
        return dg.AssetCheckResult(
            check_name=CONTRACT.name,
            asset_key=CONTRACT.asset_key,
            passed=True,
            metadata={"rows checked": rows_checked},
        )
    return dg.AssetCheckResult(
        check_name=CONTRACT.name,
        asset_key=CONTRACT.asset_key,
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{failures} contract failure(s) in rows marked valid; this is a bug in the "
        f"validation rules for {entity}: report it with this run's id",
        metadata={
            "failure cases": dg.MetadataValue.md(frame_markdown(cases.head(MAX_CASES))),
            "failures": failures,
            "rows checked": rows_checked,
        },
    )


def contract(validated_frame: pl.DataFrame, field_mapping: dict[str, Any]) -> dg.AssetCheckResult:
    from snapmap_pipeline.core.validate import build_contract

    schema = load_schema(field_mapping["entity"])
    cases = _contract_cases(build_contract(schema, field_mapping["operation"]), validated_frame)
    return _contract_result(
        cases, 0 if cases is None else cases.height, validated_frame.height, schema.entity
    )


def _conservation_result(
    rows_in: int, rows_valid: int, rows_quarantined: int, both: int | None, **extra: Any
) -> dg.AssetCheckResult:
    lost = rows_in - rows_valid - rows_quarantined
    meta: dict[str, Any] = {
        "rows in": rows_in,
        "rows valid": rows_valid,
        "rows quarantined": rows_quarantined,
        **extra,
    }
    if both is not None:
        meta["rows both valid and quarantined"] = both
    ok = lost == 0 and not both and all(v is not False for v in extra.values())
    return dg.AssetCheckResult(
        check_name=ROW_CONSERVATION.name,
        asset_key=ROW_CONSERVATION.asset_key,
        passed=ok,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=meta,
        description=None if ok else f"{lost} row(s) unaccounted for, {both or 0} counted twice",
    )


def row_conservation(
    validated_frame: pl.DataFrame, parsed_table: pl.DataFrame, quarantine: pl.DataFrame
) -> dg.AssetCheckResult:
    q_rows = quarantine["_row"].n_unique() if "_row" in quarantine.columns else quarantine.height
    both = None
    if "_row" in validated_frame.columns and "_row" in quarantine.columns:
        both = validated_frame.join(quarantine.select("_row").unique(), on="_row", how="semi").height
    return _conservation_result(parsed_table.height, validated_frame.height, q_rows, both)


class StreamedBlocks:
    """What the blocking checks of `validated_frame` need from a streamed drop, gathered block by
    block (`process_path(on_batch=...)`) so nothing holds the whole file: the valid and quarantined rows
    counted, rows both valid and quarantined (a row lives in one block, so per block is the whole file),
    the contract run on every block's valid rows, and a head of each frame for the assets' values.
    """

    def __init__(self, entity: str, operation: str, keep_rows: int) -> None:
        from snapmap_pipeline.core.validate import build_contract

        self.entity = entity
        self.contract = build_contract(load_schema(entity), operation)
        self.keep_rows = keep_rows
        self.valid_head: list[pl.DataFrame] = []
        self.quarantine_head: list[pl.DataFrame] = []
        self.rows_valid = self.rows_quarantined = self.both = 0
        self.contract_failures = 0
        self.cases: pl.DataFrame | None = None
        self.rules: dict[str, int] = {}

    def __call__(self, valid: pl.DataFrame, quarantine: pl.DataFrame) -> None:
        self.rows_valid += valid.height
        q_rows = quarantine.select("_row").unique()
        self.rows_quarantined += q_rows.height
        if valid.height and q_rows.height:
            self.both += valid.join(q_rows, on="_row", how="semi").height
        cases = _contract_cases(self.contract, valid)
        if cases is not None:
            self.contract_failures += cases.height
            if self.cases is None or self.cases.height < MAX_CASES:
                self.cases = cases if self.cases is None else pl.concat([self.cases, cases], how="diagonal")
        if "_rule" in quarantine.columns:  # a handful of rules per block
            for rule, n in quarantine.group_by("_rule").len().iter_rows():
                self.rules[str(rule)] = self.rules.get(str(rule), 0) + n
        _keep(self.valid_head, valid, self.keep_rows)
        _keep(self.quarantine_head, quarantine, self.keep_rows)

    def heads(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(first valid rows, first quarantine rows), at most `keep_rows` each."""
        return _concat(self.valid_head), _concat(self.quarantine_head)

    def rule_counts(self) -> list[dict[str, Any]]:
        """[{_rule, len}] over the whole file, most frequent first (the in-memory metadata's form)."""
        return [{"_rule": k, "len": v} for k, v in sorted(self.rules.items(), key=lambda kv: -kv[1])]

    def contract_result(self) -> dg.AssetCheckResult:
        return _contract_result(self.cases, self.contract_failures, self.rows_valid, self.entity)

    def conservation_result(self, rows_in: int, xml_records: int | None) -> dg.AssetCheckResult:
        """Counted over every block, and against the report and the records the XML holds."""
        extra: dict[str, Any] = {}
        if xml_records is not None:
            extra["records in the XML"] = xml_records
            extra["XML records match valid rows"] = xml_records == self.rows_valid
        return _conservation_result(rows_in, self.rows_valid, self.rows_quarantined, self.both, **extra)


def _keep(head: list[pl.DataFrame], frame: pl.DataFrame, rows: int) -> None:
    have = sum(f.height for f in head)
    if not head or (have < rows and frame.height):  # the first block always: its columns and types
        head.append(frame.head(max(0, rows - have)))


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame()


@dg.asset_check(
    partitions_def=drops_partitions,
    asset="validated_frame",
    blocking=False,
    additional_ins={"field_mapping": dg.AssetIn("field_mapping")},
    description="The expectation suite (a warning): great-expectations with its Data Docs, or for a small "
    "frame the same expectations in polars (the `engine` says which); the report is linked in metadata.",
)
def quality_suite(
    context: dg.AssetCheckExecutionContext,
    validated_frame: pl.DataFrame,
    field_mapping: dict[str, Any],
    artifacts: ArtifactsResource,
) -> dg.AssetCheckResult:
    from snapmap_pipeline.core.quality import run_quality

    schema = load_schema(field_mapping["entity"])
    store = artifacts.store()
    rel = f"drops/{context.partition_key}/out/quality"
    with store.staging(rel) as out_dir:
        result = run_quality(
            validated_frame,
            schema,
            field_mapping["operation"],
            out_dir,
            sample_rows=get_settings().quality_sample_rows,
        )
    docs = result.get("docs") or result.get("data_docs") or result.get("index")
    meta: dict[str, Any] = {
        k: v for k, v in result.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    meta["engine"] = str(result.get("engine", ""))
    if (store.drop_manifest(context.partition_key) or {}).get("streamed"):
        # validated_frame holds a streamed drop's first valid rows only: the CLI's streamed sample
        meta["sampled"] = True
        meta["rows in sample"] = validated_frame.height
    meta["failed"] = dg.MetadataValue.json(list(result.get("failed") or []))
    if docs:
        meta["data docs"] = dg.MetadataValue.path(
            store.uri(f"{rel}/{Path(docs).relative_to(out_dir).as_posix()}")
            if Path(docs).is_absolute()
            else str(docs)
        )
    return dg.AssetCheckResult(
        passed=bool(result.get("success", False)), severity=dg.AssetCheckSeverity.WARN, metadata=meta
    )


def xml_valid(
    xml_path: Path, entity: str, operation: str, outputs: dict[str, Any] | None = None
) -> dg.AssetCheckResult:
    """The whole written file against our XSD. When the export's own check covered every record while
    writing (`outputs["xsd_checked"]` not sampled: files up to SNAPMAP_XSD_FULL_CHECK_ROWS), its result is
    that answer and the file is not parsed a second time; a sampled export is validated here in full."""
    from snapmap_pipeline.core.export.xml import own_xsd, validate_xml

    outputs = outputs or {}
    checked = outputs.get("xsd_checked") or {}
    if checked and not checked.get("sampled") and checked.get("records") == checked.get("of"):
        errors, how = list(outputs["xsd_errors"]), "every record, while writing"
    else:
        errors, how = validate_xml(xml_path, own_xsd(entity, operation)), "the whole file, after writing"
    return dg.AssetCheckResult(
        check_name=XML_VALID.name,
        asset_key=XML_VALID.asset_key,
        passed=not errors,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "errors": len(errors),
            "checked": how,
            "first errors": dg.MetadataValue.json([str(e) for e in errors[:MAX_CASES]]),
        },
    )


checks = [quality_suite]  # the others are `check_specs` of their assets
