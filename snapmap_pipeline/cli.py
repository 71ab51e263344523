"""`snapmap`: the command line over core/. Same functions as the Dagster assets.

Exit codes: 0 processed (quarantined rows included) · 1 internal error · 2 unusable input (one-line
reason on stderr) · 3 blocked: a mapping or the entity needs review (the report says which).
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from snapmap_pipeline.errors import SnapMapError

# From about 10,000 rows (~3 MB of a typical export) GX runs the quality suite, and its worker is worth
# starting early; below, the polars engine runs the suite in process in milliseconds.
QUALITY_WORKER_ABOVE_BYTES = 2 * 1024 * 1024

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="SnapMap: HR exports in, Eightfold XML and CSV out.",
    pretty_exceptions_enable=False,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
EntityOpt = Annotated[str | None, typer.Option("--entity", "-e", help="Skip inference: use this entity.")]
TenantOpt = Annotated[str | None, typer.Option("--tenant", "-t", help="Tenant (overrides and memory).")]


def _out(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def _fail(exc: SnapMapError) -> None:
    sys.stderr.write(f"snapmap: {exc.code}: {exc.message}\n")
    raise typer.Exit(exc.exit_code)


def _read_file(path: Path) -> bytes:
    from snapmap_pipeline.errors import InputError

    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot open {path}: {exc.strerror}", code="unreadable_file") from exc


@app.command()
def entities(as_json: JsonOpt = False) -> None:
    """List the Eightfold entities SnapMap writes."""
    from snapmap_pipeline.core.schema import load_all

    rows = [
        {
            "entity": s.entity,
            "title": s.title,
            "operations": sorted(s.operations),
            "fields": len(s.output_fields),
            "csv_file": s.csv_file,
        }
        for s in load_all().values()
    ]
    if as_json:
        _out(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("entity", "csv file", "operations", "fields")
    for r in rows:
        table.add_row(r["entity"], r["csv_file"], ", ".join(r["operations"]), str(r["fields"]))
    Console().print(table)


@app.command()
def schema(
    entity: str,
    as_json: JsonOpt = False,
    xsd: Annotated[bool, typer.Option("--xsd", help="Regenerate schemas/xsd/ from the YAML.")] = False,
) -> None:
    """Show an entity's fields: name, type, required, XML path."""
    from snapmap_pipeline.core.schema import load_schema

    try:
        s = load_schema(entity)
    except SnapMapError as exc:
        _fail(exc)
    if xsd:
        from snapmap_pipeline.core.export.xsd import write_all_xsds
        from snapmap_pipeline.settings import get_settings

        write_all_xsds(get_settings().schemas_dir / "xsd")
    fields = [
        {
            "name": f.name,
            "type": f.type,
            "required": f.required,
            "xml_required": f.xml_required,
            "xml_path": f.xml,
            "max_length": f.max_length,
            "values": f.values,
            "description": f.description,
        }
        for f in s.output_fields
    ]
    if as_json:
        _out(fields)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("field", "type", "csv req", "xml req", "xml path", title=f"{s.entity} ({s.csv_file})")
    for f in fields:
        table.add_row(
            f["name"],
            f["type"],
            "yes" if f["required"] else "",
            "yes" if f["xml_required"] else "",
            f["xml_path"] or "-",
        )
    Console().print(table)


@app.command()
def detect(file: Path, as_json: JsonOpt = False) -> None:
    """Infer which entity a file holds."""
    from snapmap_pipeline.core.infer import infer_entity
    from snapmap_pipeline.core.pipeline import read_step, source_columns
    from snapmap_pipeline.core.profile import profile_frame
    from snapmap_pipeline.core.schema import load_all

    try:
        df, _ = read_step(_read_file(file), file.name)
        cols = source_columns(df)
        guess = infer_entity(cols, profile_frame(df.select(cols)), file.name, load_all())
    except SnapMapError as exc:
        _fail(exc)
    if as_json:
        _out(guess.to_dict())
        return
    sys.stdout.write(f"{guess.entity or 'unknown'} ({guess.confidence:.2f})\n")
    for ent, score in guess.candidates[:5]:
        sys.stdout.write(f"  {ent:18} {score:.2f}\n")


@app.command("map")
def map_cmd(
    file: Path,
    entity: EntityOpt = None,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
    accept: Annotated[bool, typer.Option("--accept", help="Store this mapping as confirmed.")] = False,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override one mapping: 'Header=FIELD' (repeatable).")
    ] = None,
) -> None:
    """Map a file's columns onto the entity's Eightfold fields."""
    from snapmap_pipeline.core.mapping import MappingMemory, set_override
    from snapmap_pipeline.core.pipeline import infer_step, map_step, read_step
    from snapmap_pipeline.core.schema import load_schema
    from snapmap_pipeline.errors import ConfigError
    from snapmap_pipeline.settings import get_settings

    settings = get_settings()
    try:
        if (set_ or accept) and not tenant:
            raise ConfigError("--set and --accept need --tenant (overrides and memory are per tenant)")
        df, _ = read_step(_read_file(file), file.name, settings)
        guess, profiles = infer_step(df, file.name, entity=entity, tenant=tenant, settings=settings)
        schema_ = load_schema(guess.entity)
        for item in set_ or []:
            header, sep, target = item.partition("=")
            if not sep:
                raise ConfigError(f"--set wants 'Header=FIELD', got '{item}'")
            set_override(tenant, header.strip(), target.strip() or None, settings=settings)
        mapping = map_step(df, profiles, schema_, tenant=tenant, filename=file.name, settings=settings)
        if accept or set_:
            MappingMemory(settings.lancedb_path).remember(
                mapping, tenant=tenant, confirmed_by="cli:set" if set_ else "cli:accept"
            )
    except SnapMapError as exc:
        _fail(exc)
    if as_json:
        _out(mapping.to_dict())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("source", "target", "confidence", "method", "runner-up", title=f"{schema_.entity}")
    for it in mapping.items:
        runner = next(((t, s) for t, s in it.candidates if t != it.target), None)
        table.add_row(
            it.source,
            it.target or "—",
            f"{it.confidence:.2f}",
            it.method,
            f"{runner[0]} {runner[1]:.2f}" if runner else "",
        )
    console = Console()
    console.print(table)
    for reason in mapping.review_reasons(schema_, "ingest", settings):
        console.print(f"[yellow]review:[/] {reason}")


@app.command()
def process(
    files: Annotated[list[Path], typer.Argument(help="Files to process.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")],
    entity: EntityOpt = None,
    tenant: TenantOpt = None,
    operation: Annotated[
        str, typer.Option("--operation", help="ingest | update | upsert | delete")
    ] = "ingest",
    as_json: JsonOpt = False,
    companion: Annotated[
        list[Path] | None,
        typer.Option(
            "--companion",
            "-c",
            help="A companion sheet of the entity (e.g. ROLE-ASSOCIATED-TAGS.csv), attached to the MAIN "
            "records by key; repeat for several.",
        ),
    ] = None,
) -> None:
    """Process files into DIR/<file-stem>/: XML, Eightfold CSV, quarantine.csv, report.json, quality/."""
    from snapmap_pipeline.core.quality import BackgroundQuality
    from snapmap_pipeline.settings import get_settings

    worst = 0
    summaries = []
    try:
        companions = {c.name: _read_file(c) for c in companion or []}
    except SnapMapError as exc:
        _fail(exc)
    # The quality worker starts now, so GX's slow import overlaps reading and mapping the first file; only
    # when a file processed in memory is large enough for GX to run its suite (small ones use polars).
    settings = get_settings()
    sizes = [f.stat().st_size for f in files if f.is_file()]
    worker = any(QUALITY_WORKER_ABOVE_BYTES < n <= settings.stream_above_bytes for n in sizes)
    with BackgroundQuality() if worker else contextlib.nullcontext() as background:
        for f in files:
            code, summary = _process_one(
                f, out, entity, tenant, operation, background, as_json, companions=companions
            )
            worst = max(worst, code)
            summaries.append(summary)
    if as_json:
        _out(summaries)
    raise typer.Exit(worst)


def _process_one(
    f: Path,
    out: Path,
    entity: str | None,
    tenant: str | None,
    operation: str,
    background: object,
    as_json: bool,
    *,
    companions: dict[str, bytes] | None = None,
) -> tuple[int, dict]:
    """Process one file; returns (exit code, summary row). Errors are one line on stderr.

    With companion sheets the file is processed in memory (the streaming path takes MAIN files alone)."""
    from snapmap_pipeline.core.pipeline import process_bytes
    from snapmap_pipeline.core.stream import process_file
    from snapmap_pipeline.settings import get_settings

    common = {"out_dir": out / f.stem, "entity": entity, "tenant": tenant, "operation": operation}
    try:
        if not companions and f.is_file() and f.stat().st_size > get_settings().stream_above_bytes:
            report = process_file(f, **common)  # streamed in bounded memory
        else:
            report = process_bytes(
                _read_file(f), f.name, background=background, companions=companions or None, **common
            )
    except SnapMapError as exc:
        sys.stderr.write(f"snapmap: {f.name}: {exc.code}: {exc.message}\n")
        return exc.exit_code, {"file": str(f), "status": "failed", "code": exc.code, "exit": exc.exit_code}
    if not as_json:
        sys.stdout.write(
            f"{f.name}: {report.entity} · {report.rows_in} rows · {report.rows_valid} valid · "
            f"{report.rows_quarantined} quarantined → {out / f.stem}\n"
        )
    return 0, {
        "file": str(f),
        "status": "processed",
        "entity": report.entity,
        "rows_in": report.rows_in,
        "rows_valid": report.rows_valid,
        "rows_quarantined": report.rows_quarantined,
        "out": str(out / f.stem),
    }


@app.command()
def preview(
    file: Path,
    rows: Annotated[int, typer.Option("--rows", "-n")] = 20,
    entity: EntityOpt = None,
    tenant: TenantOpt = None,
    companion: Annotated[
        list[Path] | None,
        typer.Option("--companion", "-c", help="A companion sheet of the entity; repeat for several."),
    ] = None,
) -> None:
    """Show mapped and normalised rows and an XML excerpt, without writing outputs."""
    import tempfile

    import polars as pl

    from snapmap_pipeline.core.companion import main_only
    from snapmap_pipeline.core.export.xml import write_xml
    from snapmap_pipeline.core.pipeline import companion_step, infer_step, map_step, read_step, validate_step
    from snapmap_pipeline.core.schema import load_schema

    try:
        data = _read_file(file)
        df, _ = read_step(data, file.name)
        df = df.head(rows)
        guess, profiles = infer_step(df, file.name, entity=entity, tenant=tenant)
        s = load_schema(guess.entity)
        mapping = map_step(df, profiles, s, tenant=tenant, filename=file.name)
        files = {c.name: _read_file(c) for c in companion or []}
        inputs = companion_step(data, file.name, s, files)
        validated = validate_step(df, mapping, s, tenant=tenant, companions=inputs)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "preview.xml"
            write_xml(validated.valid, s, "ingest", path)
            excerpt = path.read_text(encoding="utf-8")[:4000]
    except SnapMapError as exc:
        _fail(exc)
    with pl.Config(tbl_rows=rows, tbl_cols=12, fmt_str_lengths=30):
        shown = main_only(s, validated.valid)
        sys.stdout.write(f"entity: {s.entity}  rows shown: {df.height}\n{shown}\n")
        if validated.quarantine.height:
            sys.stdout.write(f"quarantined:\n{validated.quarantine.select('_row', '_rule', '_column')}\n")
    sys.stdout.write(excerpt + "\n")


@app.command()
def doctor() -> None:
    """Check the model, stores, sources, XSDs and Dagster storage; say plainly what is wrong."""
    from snapmap_pipeline.doctor import run_checks

    results = run_checks()
    bad = 0
    for name, ok, detail in results:
        bad += not ok
        sys.stdout.write(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}\n")
    raise typer.Exit(1 if bad else 0)


def main() -> None:
    import os

    from snapmap_pipeline.logs import configure

    # The CLI prints its own results; step logs only when asked (SNAPMAP_LOG_LEVEL=INFO).
    configure(level=os.environ.get("SNAPMAP_LOG_LEVEL", "WARNING"))
    try:
        app()
    except SnapMapError as exc:  # a user mistake that escaped a command: still one line, no traceback
        sys.stderr.write(f"snapmap: {exc.code}: {exc.message}\n")
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
