"""The `ledgerflow` console script. Configuration comes from LEDGERFLOW_* variables."""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
import uvicorn

from ledger_core.settings import Settings

app = typer.Typer(
    help="LedgerFlow: a queue-backed double-entry payment ledger.", no_args_is_help=True
)


def _logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr
    )


def parse_partitions(text: str, partitions: int) -> list[int]:
    """ "0-3,7" -> [0, 1, 2, 3, 7]; every number must be below the partition count."""
    chosen: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        if not low.isdigit() or not (high or low).isdigit():
            raise typer.BadParameter(f"{part!r} is not a partition or a range such as 0-3")
        first, last = int(low), int(high or low)
        if not 0 <= first <= last < partitions:
            raise typer.BadParameter(f"{part!r} is outside partitions 0-{partitions - 1}")
        chosen.update(range(first, last + 1))
    return sorted(chosen)


@app.command()
def migrate() -> None:
    """Bring the database schema to head (Alembic)."""
    from ledgerflow.migrate import upgrade_to_head

    _logging()
    upgrade_to_head(Settings().sqlalchemy_url())
    typer.echo("schema is at head")


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[int, typer.Option(help="API processes")] = 1,
) -> None:
    """Run the API against LEDGERFLOW_DATABASE_URL and LEDGERFLOW_REDIS_URL."""
    settings = Settings()
    if not settings.database_url or not settings.redis_url:
        typer.echo(
            "serve needs LEDGERFLOW_DATABASE_URL and LEDGERFLOW_REDIS_URL; "
            "`ledgerflow dev` runs without servers",
            err=True,
        )
        raise typer.Exit(2)
    uvicorn.run(
        "api.main:create", factory=True, host=host, port=port, workers=workers, log_level="warning"
    )


@app.command()
def worker(
    partitions: Annotated[
        str | None, typer.Option(help='Pin partitions, e.g. "0-3,7"; default: any free one')
    ] = None,
) -> None:
    """Run a worker process that applies batches for the partitions it holds."""
    from worker.main import PartitionWorker
    from worker.runtime import get_runtime

    _logging()
    runtime = get_runtime()
    pinned = parse_partitions(partitions, runtime.settings.partitions) if partitions else None
    raise typer.Exit(PartitionWorker(runtime, pinned=pinned).run())


@app.command()
def verify(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    grace_s: Annotated[float, typer.Option(help="Ignore queued requests younger than this")] = 30.0,
) -> None:
    """Check the ledger's invariants on a live database; exit 1 with a report if one fails."""
    from ledger_core.audit import audit
    from worker.queues import partitions_with_jobs
    from worker.runtime import get_runtime

    runtime = get_runtime()
    carried = partitions_with_jobs(runtime.redis, range(runtime.settings.partitions))
    report = audit(
        runtime.database,
        carried=carried,
        accepted_before=datetime.now(UTC) - timedelta(seconds=grace_s),
    )
    if as_json:
        typer.echo(
            json.dumps({"ok": report.ok, "problems": report.problems, "counts": report.counts})
        )
    else:
        for name, count in sorted(report.counts.items()):
            typer.echo(f"{name}: {count}")
        typer.echo("ledger holds every invariant" if report.ok else "INVARIANTS BROKEN:")
        for problem in report.problems:
            typer.echo(f"  - {problem}")
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def dev(
    host: str = "127.0.0.1",
    port: int = 8000,
    database_file: Annotated[
        str, typer.Option(help="SQLite file of the embedded ledger")
    ] = "ledgerflow-dev.db",
) -> None:
    """Run API and worker in one process on SQLite and an in-process Redis: no servers needed."""
    from api.app import create_app
    from ledgerflow.migrate import upgrade_to_head
    from worker.main import PartitionWorker
    from worker.runtime import build_runtime, install_runtime

    _logging("WARNING")
    settings = Settings()
    if settings.database_url is None:
        settings.database_url = f"sqlite:///{database_file}"
    upgrade_to_head(settings.sqlalchemy_url())
    runtime = build_runtime(settings)
    install_runtime(runtime)
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), host=host, port=port, log_level="warning")
    )
    api_thread = threading.Thread(target=server.run, name="api", daemon=True)
    api_thread.start()
    typer.echo(f"LedgerFlow (embedded) on http://{host}:{port}  docs: http://{host}:{port}/docs")
    try:
        PartitionWorker(runtime, name="dev").run()
    finally:
        server.should_exit = True
        api_thread.join(timeout=5)


def main() -> None:
    app()
