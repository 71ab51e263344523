"""The per-file assets: raw_upload → parsed_table → inferred_entity → field_mapping → validated_frame
(+ quarantine) → eightfold_xml (+ eightfold_csv) → delivery. Each body loads its inputs, calls
`core.pipeline`, and attaches metadata. Frames travel through the IO manager.
"""

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from snapmap_pipeline.core import pipeline as core
from snapmap_pipeline.core.companion import companion_columns, companion_for_name, sibling_companion_names
from snapmap_pipeline.core.schema import load_schema
from snapmap_pipeline.defs.daily.partitions import FEEDS, feed_key
from snapmap_pipeline.defs.drops import checks
from snapmap_pipeline.defs.drops.common import as_failure, mapping_markdown, mapping_rows, masked_preview
from snapmap_pipeline.defs.drops.partitions import (
    TAG_DROPPED_AT,
    TAG_HASH,
    TAG_PATH,
    TAG_SOURCE,
    TAG_TENANT,
    drops_partitions,
)
from snapmap_pipeline.defs.resources import ArtifactsResource, DeliveryResource, DropSourcesResource
from snapmap_pipeline.errors import InputError
from snapmap_pipeline.settings import get_settings

GROUP = "drops"
OPERATION = "ingest"  # a dropped file is a full export; the daily feed derives update/delete
EMBEDDING_POOL = "snapmap_embeddings"  # limits concurrent inference/mapping steps (model in memory)
NETWORK_RETRY = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def _common(**kw: Any) -> dict[str, Any]:
    return {"partitions_def": drops_partitions, "group_name": GROUP, **kw}


@dg.asset(**_common(kinds={"file"}), retry_policy=NETWORK_RETRY)
def raw_upload(
    context: dg.AssetExecutionContext, artifacts: ArtifactsResource, drop_sources: DropSourcesResource
) -> dict[str, Any]:
    """The dropped bytes, fetched once from their source and kept in the artifacts store.

    A re-execution reuses the stored bytes, so a file already moved to processed/ can still rerun.
    """
    key = context.partition_key
    store = artifacts.store()
    tags = context.run.tags
    manifest = store.drop_manifest(key)
    with as_failure():
        if manifest is None or (TAG_HASH in tags and manifest.get("hash") != tags[TAG_HASH]):
            if TAG_PATH not in tags:
                raise InputError(
                    f"drop {key} is unknown: nothing stored for it and the run has no source tags; "
                    f"drop the file again so a sensor picks it up",
                    code="drop_unknown",
                )
            with drop_sources.source(tags[TAG_SOURCE]) as source:
                data = source.fetch(tags[TAG_PATH])
                # Companion sheets beside the MAIN file (same folder, Eightfold's names) ride with it.
                siblings = {
                    name: source.fetch(name)
                    for name in sibling_companion_names(tags[TAG_PATH])
                    if source.stat(name) is not None
                }
            digest = core.content_hash(data)
            if TAG_HASH in tags and digest != tags[TAG_HASH]:
                raise InputError(
                    "the file changed on the source since the sensor saw it; its new bytes get their own "
                    "partition on the next sensor tick",
                    code="drop_changed",
                )
            name = tags[TAG_PATH]
            upload = f"drops/{key}/upload/{Path(name).name}"
            store.write_bytes(upload, data)
            companions = {}
            for sibling, sibling_data in siblings.items():  # a handful of sheets at most
                companions[Path(sibling).name] = f"drops/{key}/companions/{Path(sibling).name}"
                store.write_bytes(companions[Path(sibling).name], sibling_data)
            manifest = {
                "key": key,
                "path": name,
                "filename": Path(name).name,
                "tenant": tags.get(TAG_TENANT) or core.tenant_from_name(name),
                "source": tags[TAG_SOURCE],
                "hash": digest,
                "bytes": len(data),
                "dropped_at": tags.get(TAG_DROPPED_AT) or datetime.now(UTC).isoformat(),
                "upload": upload,
                "companions": companions,
                "status": "received",
            }
            store.write_json(f"drops/{key}/drop.json", manifest)
    context.add_output_metadata(
        {
            "tenant": manifest["tenant"] or "",
            "source": manifest["source"],
            "original path": manifest["path"],
            "bytes": manifest["bytes"],
            "content hash": manifest["hash"],
            "dropped at": manifest["dropped_at"],
            "upload": dg.MetadataValue.path(store.uri(manifest["upload"])),
        }
    )
    return manifest


@dg.asset(**_common(kinds={"polars"}))
def parsed_table(
    context: dg.AssetExecutionContext, raw_upload: dict[str, Any], artifacts: ArtifactsResource
) -> pl.DataFrame:
    """The file as a frame of strings with `_row`, the spreadsheet row a person sees."""
    started = time.perf_counter()
    data = artifacts.store().read_bytes(raw_upload["upload"])
    with as_failure():
        df, report = core.read_step(data, raw_upload["filename"])
    info = report.to_dict()
    context.add_output_metadata(
        {
            "rows": df.height,
            "columns": df.width - 1,
            "column names": dg.MetadataValue.json(core.source_columns(df)),
            "read": dg.MetadataValue.json(
                {k: v for k, v in info.items() if isinstance(v, str | int | float)}
            ),
            "preview": masked_preview(df, show_values=get_settings().preview),
            "seconds": round(time.perf_counter() - started, 3),
        }
    )
    return df


@dg.asset(**_common(kinds={"python"}), pool=EMBEDDING_POOL)
def inferred_entity(
    context: dg.AssetExecutionContext, raw_upload: dict[str, Any], parsed_table: pl.DataFrame
) -> dict[str, Any]:
    """Which Eightfold entity the file holds (tenant override first, then inference)."""
    started = time.perf_counter()
    with as_failure():
        guess, _ = core.infer_step(parsed_table, raw_upload["filename"], tenant=raw_upload["tenant"])
    out = guess.to_dict()
    context.add_output_metadata(
        {
            "entity": out["entity"],
            "confidence": float(out.get("confidence") or 0.0),
            "candidates": dg.MetadataValue.json(out.get("candidates", [])),
            "seconds": round(time.perf_counter() - started, 3),
        }
    )
    return out


@dg.asset(**_common(kinds={"python"}), pool=EMBEDDING_POOL, check_specs=[checks.MAPPING_REVIEWED])
def field_mapping(
    context: dg.AssetExecutionContext,
    raw_upload: dict[str, Any],
    parsed_table: pl.DataFrame,
    inferred_entity: dict[str, Any],
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """Source columns → Eightfold fields. Never raises for review: the blocking check does that, so the
    mapping is visible in the UI when it needs a person."""
    started = time.perf_counter()
    entity, tenant = inferred_entity["entity"], raw_upload["tenant"]
    with as_failure():
        schema = load_schema(entity)
        _, profiles = core.infer_step(parsed_table, raw_upload["filename"], entity=entity, tenant=tenant)
        mapping = core.map_step(
            parsed_table, profiles, schema, tenant=tenant, filename=raw_upload["filename"]
        )
    rows = mapping_rows(mapping)
    confs = [float(r["confidence"]) for r in rows if r.get("target") and r.get("confidence") is not None]
    out = {"entity": entity, "operation": OPERATION, "tenant": tenant, "mapping": mapping}
    yield dg.Output(
        out,
        metadata={
            "entity": entity,
            "mapping": dg.MetadataValue.md(mapping_markdown(rows)),
            "mapped columns": sum(1 for r in rows if r.get("target")),
            "unmapped columns": sum(1 for r in rows if not r.get("target")),
            "min confidence": min(confs) if confs else 0.0,
            "mean confidence": round(sum(confs) / len(confs), 4) if confs else 0.0,
            "seconds": round(time.perf_counter() - started, 3),
        },
    )
    yield checks.mapping_reviewed(out)


@dg.multi_asset(
    outs={
        "validated_frame": dg.AssetOut(
            kinds={"polars"}, description="Rows that can go out, Eightfold text forms."
        ),
        "quarantine": dg.AssetOut(
            kinds={"polars"}, description="Rows that cannot, with _row, _rule, _column, _message."
        ),
    },
    check_specs=[checks.CONTRACT, checks.ROW_CONSERVATION],
    **_common(),
)
def validated_frame(
    context: dg.AssetExecutionContext,
    raw_upload: dict[str, Any],
    parsed_table: pl.DataFrame,
    field_mapping: dict[str, Any],
    artifacts: ArtifactsResource,
):
    """Mapped → SQL model → validated; every row ends up valid or quarantined with its reason. Companion
    sheets that came with the drop are attached (core/companion.py)."""
    started = time.perf_counter()
    schema = load_schema(field_mapping["entity"])
    dropped_at = datetime.fromisoformat(raw_upload["dropped_at"])
    store = artifacts.store()
    files = {
        name: store.read_bytes(rel)
        for name, rel in (raw_upload.get("companions") or {}).items()
        if companion_for_name(schema, name) is not None
    }
    with as_failure():
        inputs = core.companion_step(
            lambda: store.read_bytes(raw_upload["upload"]), raw_upload["filename"], schema, files
        )
        v = core.validate_step(
            parsed_table,
            field_mapping["mapping"],
            schema,
            operation=field_mapping["operation"],
            drop_time=dropped_at,
            tenant=raw_upload["tenant"],
            companions=inputs,
        )
    r = v.result
    figures = {
        "rows in": r.rows_in,
        "rows valid": r.rows_valid,
        "rows quarantined": r.rows_quarantined,
        "quarantine rate": round(r.rows_quarantined / r.rows_in, 4) if r.rows_in else 0.0,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if v.companions is not None and v.companions.sheets:  # per sheet: attached / quarantined, by rule
        figures["companions"] = dg.MetadataValue.json(v.companions.to_dict())
    show = get_settings().preview
    yield dg.Output(
        v.valid,
        "validated_frame",
        metadata={
            **figures,
            "preview": masked_preview(v.valid.drop(companion_columns(schema, v.valid)), show_values=show),
        },
    )
    yield dg.Output(
        v.quarantine,
        "quarantine",
        metadata={
            "rows": v.quarantine.height,
            "rules": dg.MetadataValue.json(
                v.quarantine.group_by("_rule").len().sort("len", descending=True).head(20).to_dicts()
                if "_rule" in v.quarantine.columns
                else []
            ),
        },
    )
    yield checks.contract(v.valid, field_mapping)
    yield checks.row_conservation(v.valid, parsed_table, v.quarantine)


@dg.multi_asset(
    outs={
        "eightfold_xml": dg.AssetOut(kinds={"xml"}, description="The primary feed, valid against the XSD."),
        "eightfold_csv": dg.AssetOut(
            kinds={"csv"}, description="Eightfold CSV (skipped with a reason when the spec can't be met)."
        ),
    },
    check_specs=[checks.XML_VALID],
    **_common(),
)
def eightfold_xml(
    context: dg.AssetExecutionContext,
    validated_frame: pl.DataFrame,
    quarantine: pl.DataFrame,
    field_mapping: dict[str, Any],
    artifacts: ArtifactsResource,
):
    """Write `<entity>.xml`, `<ENTITY>-MAIN.csv` and `quarantine.csv` for this drop."""
    started = time.perf_counter()
    schema = load_schema(field_mapping["entity"])
    store = artifacts.store()
    rel = f"drops/{context.partition_key}/out"
    validated = core.Validated(validated_frame, quarantine, None, None)
    with as_failure(), store.staging(rel) as out_dir:
        outputs = core.export_step(
            validated, schema, out_dir, operation=field_mapping["operation"], quality=False
        )
        xml_check = checks.xml_valid(Path(outputs["xml"]), schema.entity, field_mapping["operation"])

    def uri(local: str | None) -> str | None:
        return None if local is None else store.uri(f"{rel}/{Path(local).relative_to(out_dir).as_posix()}")

    files = {"xml": uri(outputs["xml"]), "csv": uri(outputs["csv"]), "quarantine": uri(outputs["quarantine"])}
    result = {**files, "entity": schema.entity, "operation": field_mapping["operation"], "rel": rel}
    yield dg.Output(
        result,
        "eightfold_xml",
        metadata={
            "xml": dg.MetadataValue.path(files["xml"]),
            "quarantine": dg.MetadataValue.path(files["quarantine"]),
            "records": int(outputs["xml_report"].get("records", validated_frame.height)),
            "seconds": round(time.perf_counter() - started, 3),
        },
    )
    csv_meta: dict[str, Any] = {"skipped": files["csv"] is None}
    if files["csv"]:
        csv_meta["csv"] = dg.MetadataValue.path(files["csv"])
    else:
        csv_meta["reason"] = str(outputs["csv_report"].get("reason", ""))
    yield dg.Output(files["csv"], "eightfold_csv", metadata=csv_meta)
    yield xml_check


@dg.asset(**_common(kinds={"sftp", "s3"}), retry_policy=NETWORK_RETRY)
def delivery(
    context: dg.AssetExecutionContext,
    raw_upload: dict[str, Any],
    eightfold_xml: dict[str, Any],
    eightfold_csv: str | None,
    artifacts: ArtifactsResource,
    delivery: DeliveryResource,
    drop_sources: DropSourcesResource,
) -> dict[str, Any]:
    """Send the feeds to the delivery target (when one is configured), record the drop as delivered
    for the daily feed, and move the source file to processed/ (when configured)."""
    store = artifacts.store()
    key = context.partition_key
    target = delivery.delivery_target()
    delivered: dict[str, Any] = {"target": None}
    if target is not None:
        rel = eightfold_xml["rel"]
        names = [Path(p).name for p in (eightfold_xml["xml"], eightfold_csv) if p]
        with as_failure():
            delivered = target.deliver(
                {n: store.read_bytes(f"{rel}/{n}") for n in names},
                f"{raw_upload['tenant'] or 'default'}/{key}",
            )
    manifest = {
        **raw_upload,
        "entity": eightfold_xml["entity"],
        "status": "delivered",
        "delivered_at": datetime.now(UTC).isoformat(),
    }
    store.write_json(f"drops/{key}/drop.json", manifest)
    if raw_upload["tenant"]:
        feed = feed_key(raw_upload["tenant"], eightfold_xml["entity"])
        if not context.instance.has_dynamic_partition(FEEDS, feed):
            context.instance.add_dynamic_partitions(FEEDS, [feed])
    moved = None
    if drop_sources.move_processed and drop_sources.configured(raw_upload["source"]):
        with as_failure(), drop_sources.source(raw_upload["source"]) as source:
            moved = source.move(raw_upload["path"], "processed")
    context.add_output_metadata(
        {
            "delivered": target is not None,
            "files": dg.MetadataValue.json(delivered.get("files", []) if isinstance(delivered, dict) else []),
            "moved to": moved or "",
        }
    )
    return {"delivered": target is not None, "moved_to": moved}


assets = [raw_upload, parsed_table, inferred_entity, field_mapping, validated_frame, eightfold_xml, delivery]
