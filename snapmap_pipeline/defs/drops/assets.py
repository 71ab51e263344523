"""The per-file assets: raw_upload → parsed_table → inferred_entity → field_mapping → validated_frame
(+ quarantine) → eightfold_xml (+ eightfold_csv) → delivery. Each body loads its inputs, calls
`core.pipeline`, and attaches metadata. Frames travel through the IO manager.

A CSV drop above SNAPMAP_STREAM_ABOVE_BYTES is *streamed*, as the CLI streams it: the same assets,
checks and lineage, but the file is fetched and stored block by block, parsed_table is the prefix that
`core.stream` maps from (so the mapping is shown and reviewed as for any file), and validated_frame runs
`core.stream.process_path` with that reviewed mapping, writing every feed in bounded memory. Its frames
are then the first rows only (full counts in metadata) and eightfold_xml records the written feeds.
A drop with companion sheets beside it, or a workbook, goes the in-memory way (still capped at
SNAPMAP_MAX_FILE_BYTES), as `snapmap process --companion` does.
"""

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from snapmap_pipeline.core import pipeline as core
from snapmap_pipeline.core import stream
from snapmap_pipeline.core.companion import companion_for_name, main_only, sibling_companion_names
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
            name = tags[TAG_PATH]
            upload = f"drops/{key}/upload/{Path(name).name}"
            large = None
            with drop_sources.source(tags[TAG_SOURCE]) as source:
                listed = source.stat(name)
                if listed is not None and listed.size > get_settings().stream_above_bytes:
                    # Block by block into the store, hashed on the way: never held as bytes.
                    with store.receive(upload) as dest:
                        digest = source.fetch_to(listed, dest)
                        _same_bytes(digest, tags)
                    large = listed.size
                else:
                    data = source.fetch(name)
                    digest = core.content_hash(data)
                # Companion sheets beside the MAIN file (same folder, Eightfold's names) ride with it.
                siblings = {
                    sibling: source.fetch(sibling)
                    for sibling in sibling_companion_names(name)
                    if source.stat(sibling) is not None
                }
            if large is None:
                _same_bytes(digest, tags)
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
                "bytes": len(data) if large is None else large,
                "dropped_at": tags.get(TAG_DROPPED_AT) or datetime.now(UTC).isoformat(),
                "upload": upload,
                "companions": companions,
                # streamed through core.stream: a CSV (not a workbook) above the threshold, alone
                "streamed": large is not None
                and not companions
                and not stream.is_excel_head(store.read_head(upload, 8)),
                "status": "received",
            }
            store.write_json(f"drops/{key}/drop.json", manifest)
    context.add_output_metadata(
        {
            "tenant": manifest["tenant"] or "",
            "source": manifest["source"],
            "original path": manifest["path"],
            "bytes": manifest["bytes"],
            "streamed": bool(manifest.get("streamed")),
            "content hash": manifest["hash"],
            "dropped at": manifest["dropped_at"],
            "upload": dg.MetadataValue.path(store.uri(manifest["upload"])),
        }
    )
    return manifest


def _same_bytes(digest: str, tags: dict[str, str]) -> None:
    if TAG_HASH in tags and digest != tags[TAG_HASH]:
        raise InputError(
            "the file changed on the source since the sensor saw it; its new bytes get their own "
            "partition on the next sensor tick",
            code="drop_changed",
        )


@dg.asset(**_common(kinds={"polars"}))
def parsed_table(
    context: dg.AssetExecutionContext, raw_upload: dict[str, Any], artifacts: ArtifactsResource
) -> pl.DataFrame:
    """The file as a frame of strings with `_row`, the spreadsheet row a person sees. For a streamed
    drop, its prefix: the rows `core.stream` decides the entity and the mapping from."""
    started = time.perf_counter()
    store = artifacts.store()
    streamed: dict[str, Any] = {}
    with as_failure():
        if raw_upload.get("streamed"):
            head = store.read_head(raw_upload["upload"], stream.PREFIX_READ_BYTES)
            complete = len(head) < stream.PREFIX_READ_BYTES
            df, report = stream.read_prefix(head, raw_upload["filename"], complete=complete)
            del head
            streamed = {
                "streamed": True,
                "prefix": f"the first {df.height} rows of a streamed file of {raw_upload['bytes']} bytes; "
                "validated_frame has the whole file's counts",
            }
        else:
            df, report = core.read_step(store.read_bytes(raw_upload["upload"]), raw_upload["filename"])
    info = report.to_dict()
    context.add_output_metadata(
        {
            **streamed,
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
    sheets that came with the drop are attached (core/companion.py). A streamed drop goes through
    `core.stream.process_path`, which writes its feeds too (see the module docstring)."""
    if raw_upload.get("streamed"):
        yield from _validated_streamed(context, raw_upload, field_mapping, artifacts)
        return
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
            "preview": masked_preview(main_only(schema, v.valid), show_values=show),
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


def _validated_streamed(
    context: dg.AssetExecutionContext,
    raw_upload: dict[str, Any],
    field_mapping: dict[str, Any],
    artifacts: ArtifactsResource,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """validated_frame for a streamed drop: every feed written into the drop's out/ folder in bounded
    memory, the blocking checks gathered block by block, the first rows as the assets' values."""
    started = time.perf_counter()
    settings = get_settings()
    store = artifacts.store()
    entity, operation = field_mapping["entity"], field_mapping["operation"]
    blocks = checks.StreamedBlocks(entity, operation, settings.quality_sample_rows)
    rel = f"drops/{context.partition_key}/out"
    with (
        as_failure(),
        store.local_copy(raw_upload["upload"]) as src,
        store.staging(rel) as out_dir,
    ):
        report = stream.process_path(
            src,
            out_dir=out_dir,
            entity=entity,
            tenant=raw_upload["tenant"],
            operation=operation,
            drop_time=datetime.fromisoformat(raw_upload["dropped_at"]),
            settings=settings,
            quality=False,  # the quality_suite check runs on this asset's value: the same first rows
            mapping=field_mapping["mapping"],
            on_batch=blocks,
        )
    valid, quarantine = blocks.heads()
    info = report.outputs.get("streamed", {})
    figures = {
        "streamed": True,
        "rows in": report.rows_in,
        "rows valid": report.rows_valid,
        "rows quarantined": report.rows_quarantined,
        "quarantine rate": round(report.rows_quarantined / report.rows_in, 4) if report.rows_in else 0.0,
        "batches": int(info.get("batches", 0)),
        "seconds": round(time.perf_counter() - started, 3),
    }
    show = settings.preview
    yield dg.Output(
        valid,
        "validated_frame",
        metadata={
            **figures,
            "value": f"the first {valid.height} of {report.rows_valid} valid rows; the feeds hold them all",
            "preview": masked_preview(valid, show_values=show),
        },
    )
    yield dg.Output(
        quarantine,
        "quarantine",
        metadata={
            "rows": report.rows_quarantined,
            "value": f"the first {quarantine.height} quarantine rows; quarantine.csv holds them all",
            "rules": dg.MetadataValue.json(blocks.rule_counts()[:20]),
        },
    )
    yield blocks.contract_result()
    records = report.outputs.get("xml_report", {}).get("rows")
    yield blocks.conservation_result(report.rows_in, None if records is None else int(records))


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
    """Write `<entity>.xml`, `<ENTITY>-MAIN.csv` and `quarantine.csv` for this drop. A streamed drop's
    feeds were written by validated_frame: they are recorded and the XML checked, not written again."""
    started = time.perf_counter()
    schema = load_schema(field_mapping["entity"])
    store = artifacts.store()
    rel = f"drops/{context.partition_key}/out"
    manifest = store.drop_manifest(context.partition_key) or {}
    if manifest.get("streamed"):
        outputs = store.read_json(f"{rel}/report.json")["outputs"]
        # report.json names the files where they were written (a temp folder for an S3 store)
        with as_failure(), store.local_copy(f"{rel}/{Path(outputs['xml']).name}") as xml_local:
            xml_check = checks.xml_valid(xml_local, schema.entity, field_mapping["operation"])

        def uri(local: str | None) -> str | None:
            return None if local is None else store.uri(f"{rel}/{Path(local).name}")

    else:
        validated = core.Validated(validated_frame, quarantine, None, None)
        with as_failure(), store.staging(rel) as out_dir:
            outputs = core.export_step(
                validated, schema, out_dir, operation=field_mapping["operation"], quality=False
            )
            xml_check = checks.xml_valid(
                Path(outputs["xml"]), schema.entity, field_mapping["operation"], outputs
            )

        def uri(local: str | None) -> str | None:
            return (
                None if local is None else store.uri(f"{rel}/{Path(local).relative_to(out_dir).as_posix()}")
            )

    files = {"xml": uri(outputs["xml"]), "csv": uri(outputs["csv"]), "quarantine": uri(outputs["quarantine"])}
    result = {**files, "entity": schema.entity, "operation": field_mapping["operation"], "rel": rel}
    yield dg.Output(
        result,
        "eightfold_xml",
        metadata={
            "xml": dg.MetadataValue.path(files["xml"]),
            "quarantine": dg.MetadataValue.path(files["quarantine"]),
            "records": int(outputs["xml_report"].get("rows", validated_frame.height)),
            "streamed": bool(manifest.get("streamed")),
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
        # From disk, block by block: a streamed drop's feeds are as large as the drop.
        with as_failure(), contextlib.ExitStack() as files:
            local = {n: files.enter_context(store.local_copy(f"{rel}/{n}")) for n in names}
            delivered = target.deliver(local, f"{raw_upload['tenant'] or 'default'}/{key}")
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
