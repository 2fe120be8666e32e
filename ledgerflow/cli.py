"""The `ledgerflow` console script. Configuration comes from LEDGERFLOW_* variables."""

from __future__ import annotations

import getpass
import json
import logging
import sys
import threading
from dataclasses import asdict
from typing import Annotated

import typer
import uvicorn

from ledger_core.access import Keys
from ledger_core.errors import LedgerError
from ledger_core.keys import DEFAULT_LEDGER, SCOPES, ApiKey
from ledger_core.settings import Settings
from ledger_core.trail import Actor

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
    from ledgerflow.http import HeaderDeadlineProtocol

    _say_which_hosts(host, settings)
    uvicorn.run(
        "ledgerflow.asgi:create",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        # uvicorn bounds the idle time between requests; the protocol bounds the headers,
        # and the app the body (docs/SECURITY.md).
        http=HeaderDeadlineProtocol,
        timeout_keep_alive=5,
    )


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _say_which_hosts(bind: str, settings: Settings) -> None:
    """Listening beyond loopback while answering loopback names only is safe, but puzzling:
    say so at start rather than let every request be a 400."""
    if bind not in LOOPBACK and "*" not in settings.allowed_hosts:
        typer.echo(
            f"answering Host {', '.join(settings.allowed_hosts)} only"
            " (LEDGERFLOW_ALLOWED_HOSTS); requests naming another host get 400"
            " host_not_allowed",
            err=True,
        )


@app.command()
def worker(
    partitions: Annotated[
        str | None, typer.Option(help='Pin partitions, e.g. "0-3,7"; default: any free one')
    ] = None,
) -> None:
    """Run a worker process that applies batches for the partitions it holds."""
    from runtime.context import build_runtime, tune_gc
    from worker.main import PartitionWorker

    _logging()
    runtime = build_runtime(Settings())
    pinned = parse_partitions(partitions, runtime.settings.partitions) if partitions else None
    partition_worker = PartitionWorker(runtime, pinned=pinned)
    tune_gc()
    raise typer.Exit(partition_worker.run())


@app.command()
def verify(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    grace_s: Annotated[float, typer.Option(help="Ignore queued requests younger than this")] = 30.0,
) -> None:
    """Check the ledger's invariants on a live database; exit 1 with a report if one fails."""
    from ledger_core.store.audit import audit
    from runtime.context import build_runtime
    from runtime.queues import partitions_with_jobs

    runtime = build_runtime(Settings())
    carried = partitions_with_jobs(runtime.redis, range(runtime.settings.partitions))
    report = audit(runtime.database, carried=carried, grace_s=grace_s)
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


def embedded_settings(database_file: str) -> Settings:
    """The configuration of `ledgerflow dev`: the environment's, with the SQLite file when no
    database is named (and, with no Redis named, the in-process one)."""
    settings = Settings()
    if settings.database_url is None:
        settings.database_url = f"sqlite:///{database_file}"
    return settings


def _dev_key(keys: Keys) -> None:
    """On the first start of a dev ledger (no key yet), a key with every scope, printed as
    the export line the README's examples use. Later starts cannot show it again."""
    if keys.list_keys():
        typer.echo(
            "API keys exist already (the first one was printed on the first start);"
            " a new one: ledgerflow keys create --client dev --scopes " + ",".join(SCOPES)
        )
        return
    _, secret = keys.create(client="dev", scopes=SCOPES, actor=operator())
    typer.echo("An API key with every scope for this dev ledger, shown this once:")
    typer.echo(f"export LEDGERFLOW_API_KEY={secret}")


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
    from ledgerflow.http import HeaderDeadlineProtocol
    from ledgerflow.migrate import upgrade_to_head
    from runtime.context import build_runtime
    from worker.main import PartitionWorker

    _logging("WARNING")
    settings = embedded_settings(database_file)
    upgrade_to_head(settings.sqlalchemy_url())
    runtime = build_runtime(settings)
    if settings.auth == "on":
        _dev_key(Keys(runtime.database))
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(runtime),
            host=host,
            port=port,
            log_level="warning",
            http=HeaderDeadlineProtocol,
        )
    )
    api_thread = threading.Thread(target=server.run, name="api", daemon=True)
    api_thread.start()
    typer.echo(f"LedgerFlow (embedded) on http://{host}:{port}  docs: http://{host}:{port}/docs")
    try:
        PartitionWorker(runtime, name="dev").run()
    finally:
        server.should_exit = True
        api_thread.join(timeout=5)


keys = typer.Typer(help="API keys: create (the secret is shown once), list, revoke.")
app.add_typer(keys, name="keys")


def operator(ledger: str = DEFAULT_LEDGER) -> Actor:
    """The audit trail's name for whoever runs this command: `operator:<login>`."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return Actor(None, f"operator:{login}"[:128], ledger)


def _keys() -> Keys:
    from ledger_core.store.database import create_database

    return Keys(create_database(Settings().sqlalchemy_url(), pool_size=1))


def _key_json(key: ApiKey) -> dict[str, object]:
    return {
        "id": key.id,
        "client": key.client,
        "ledger": key.ledger,
        "scopes": sorted(key.scopes),
        "rate_per_s": key.rate_per_s,
        "created_at": key.created_at.isoformat(),
        "revoked_at": None if key.revoked_at is None else key.revoked_at.isoformat(),
    }


@keys.command("create")
def keys_create(
    client: Annotated[str, typer.Option(help="The client the key acts as")],
    scopes: Annotated[str, typer.Option(help=f"Comma-separated, of: {', '.join(SCOPES)}")],
    ledger: Annotated[str, typer.Option(help="The ledger (tenant) it sees")] = DEFAULT_LEDGER,
    rate_per_s: Annotated[
        float | None, typer.Option(help="Requests per second (with a burst); none: unlimited")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Create a key. Its secret is printed once and stored only as a hash."""
    try:
        key, secret = _keys().create(
            client=client,
            scopes=scopes.split(","),
            ledger=ledger,
            rate_per_s=rate_per_s,
            actor=operator(ledger),
        )
    except LedgerError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        created = {"id": key.id, "secret": secret, "client": key.client, "ledger": key.ledger}
        typer.echo(json.dumps({**created, "scopes": sorted(key.scopes)}))
        return
    typer.echo(f"key {key.id} for client {key.client} on ledger {key.ledger}")
    typer.echo(f"scopes: {','.join(sorted(key.scopes))}")
    typer.echo("the secret, shown this once:")
    typer.echo(secret)


@keys.command("list")
def keys_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array")] = False,
) -> None:
    """Every key (never a secret): id, client, ledger, scopes, rate, created, revoked."""
    listed = _keys().list_keys()
    if as_json:
        typer.echo(json.dumps([_key_json(key) for key in listed]))
        return
    for key in listed:
        state = "revoked " + key.revoked_at.isoformat() if key.revoked_at else "active"
        rate = "unlimited" if key.rate_per_s is None else f"{key.rate_per_s:g}/s"
        typer.echo(
            f"{key.id}  {key.client}  {key.ledger}  {','.join(sorted(key.scopes))}  {rate}  {state}"
        )


@keys.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key: every API process refuses it within `LEDGERFLOW_KEY_CACHE_S` (0.5 s)."""
    try:
        key = _keys().revoke(key_id, actor=operator())
    except LedgerError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"revoked {key.id} ({key.client} on {key.ledger})")


@app.command()
def audit(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
    limit: Annotated[int, typer.Option(help="At most this many events, oldest first")] = 1000,
    cursor: Annotated[str | None, typer.Option(help="Start after this page cursor")] = None,
) -> None:
    """The audit trail: accounts created or changed, keys created or revoked, postings
    retried; who (key id, client, ledger), what, on which target, when."""
    from ledger_core.access import AuditTrail
    from ledger_core.store.database import create_database

    trail = AuditTrail(create_database(Settings().sqlalchemy_url(), pool_size=1))
    shown = 0
    while shown < limit:
        page = trail.page(cursor, min(500, limit - shown))
        for event in page.items:
            if as_json:
                fields = {**asdict(event), "at": event.at.isoformat()}
                typer.echo(json.dumps(fields, sort_keys=True))
            else:
                who = event.key_id or "-"
                typer.echo(
                    f"{event.position}  {event.at.isoformat()}  {event.client} ({who}, "
                    f"{event.ledger})  {event.action}  {event.target}"
                )
        shown += len(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    if cursor is not None:
        typer.echo(f"more: --cursor {cursor}", err=True)


ops = typer.Typer(help="Operate a running deployment: status, failed postings, replays.")
app.add_typer(ops, name="ops")


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}s"


@ops.command("status")
def ops_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON")] = False,
) -> None:
    """Per partition: depth, oldest age, owner, applied/s, refused/s; per worker: heartbeat,
    partitions, batches, last error."""
    from runtime.context import build_runtime
    from runtime.status import ops_status as read_status

    runtime = build_runtime(Settings())
    status = read_status(runtime, runtime.ledger)
    if as_json:
        typer.echo(json.dumps(status.to_json(), indent=2))
        return
    totals = status.totals
    typer.echo(
        f"queued {totals.queued}  oldest {_age(totals.oldest_age_s)}  "
        f"applied/s {totals.applied_per_s}  refused/s {totals.refused_per_s}  "
        f"live workers {totals.live_workers}  unowned partitions "
        f"{totals.unowned_partitions}  failed {totals.failed}"
    )
    if status.autovacuum is False:
        typer.echo(
            "warning: PostgreSQL autovacuum is off; dead rows of applied postings pile up"
            " and the queue slows down (docs/OPERATIONS.md)"
        )
    typer.echo("")
    typer.echo(
        f"{'partition':>9} {'queued':>8} {'oldest':>8} {'jobs':>5} {'applied/s':>10} "
        f"{'refused/s':>10}  owner"
    )
    for row in status.partitions:
        typer.echo(
            f"{row.partition:>9} {row.queued:>8} {_age(row.oldest_age_s):>8} "
            f"{row.jobs_waiting:>5} {row.applied_per_s:>10} {row.refused_per_s:>10}  "
            f"{row.owner or '(none)'}"
        )
    typer.echo("")
    typer.echo(f"{'worker':<40} {'heartbeat':>9} {'batches':>8} {'applied':>9}  partitions")
    for worker in status.workers:
        name = worker.name + ("" if worker.live else " (dead)")
        pinned = " pinned" if worker.pinned is not None else ""
        typer.echo(
            f"{name:<40} {_age(worker.heartbeat_age_s):>9} {worker.batches:>8} "
            f"{worker.applied:>9}  {worker.partitions}{pinned}"
        )
        if worker.last_error:
            typer.echo(
                f"{'':<40} last error {_age(worker.last_error_age_s)} ago: "
                f"{worker.last_error[:200]}"
            )


@ops.command("failed")
def ops_failed(
    as_json: Annotated[bool, typer.Option("--json", help="Print them as JSON")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
) -> None:
    """Postings that could not be applied (poison), oldest first, with their error."""
    from runtime.context import build_runtime
    from runtime.status import failed_public

    failed = build_runtime(Settings()).ledger.failed_postings(limit)
    if as_json:
        typer.echo(json.dumps([failed_public(f) for f in failed]))
        return
    if not failed:
        typer.echo("no failed postings")
    for f in failed:
        typer.echo(
            f"{f.request_id}  client={f.client_id}  key={f.idempotency_key}  "
            f"partition={f.partition}  {f.error_code}: {f.error_detail}"
        )


@ops.command("retry")
def ops_retry(
    keys: Annotated[list[str] | None, typer.Argument(help="Idempotency keys to replay")] = None,
    client: Annotated[
        str | None, typer.Option(help="Only the keys of this client (X-Client-Id)")
    ] = None,
    retry_all: Annotated[bool, typer.Option("--all", help="Replay every failed posting")] = False,
) -> None:
    """Queue failed postings again once their cause is fixed; they are applied in order."""
    from runtime.context import build_runtime
    from runtime.status import retry_failed

    if bool(keys) == retry_all:
        typer.echo("name idempotency keys or --all (not both)", err=True)
        raise typer.Exit(2)
    chosen = None if retry_all else [(client, key) for key in keys or []]
    runtime = build_runtime(Settings())
    requeued = retry_failed(runtime, runtime.ledger, chosen, actor=operator())
    count = sum(len(ids) for ids in requeued.values())
    typer.echo(f"requeued {count} failed posting(s)" + (f": {requeued}" if count else ""))
    raise typer.Exit(0 if count else 1)


def main() -> None:
    app()
