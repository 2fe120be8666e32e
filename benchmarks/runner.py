"""The benchmark's plan: runs x scenarios x modes, each phase sent, drained and measured.

Each run opens fresh accounts on the queued service (and on the direct one, unless it
already knows them because both share a database), then runs every scenario in every
mode against them, interleaved so that a slow drift of the machine touches all alike:

- `single`: POST /transactions, one posting per request, from `concurrency` tasks;
- `batch`: POST /transactions/batch of BATCH_SIZE postings, from BATCH_CONCURRENCY tasks;
- `waited`: POST /transactions?wait=WAIT_S, expecting 201 once posted;
- `direct`: `single` against the service in direct mode, the baseline of the ratios.

A phase ends when the service reports nothing queued and every sampled key is final.
Each run also measures the ceilings (`benchmarks.ceilings`): the HTTP ceiling first, and
the PostgreSQL ceiling of each scenario before that scenario's phases. Every phase,
ceilings included, reports the CPU its process groups spent per posting (`benchmarks.cpu`).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from benchmarks.cpu import Snapshot, cpu_figures
from benchmarks.discovery import Known
from benchmarks.e2e import (
    API_PREFIX,
    Accounts,
    ClientPool,
    Deadline,
    Figures,
    await_drained,
    open_accounts,
    shares_accounts,
    skip_absent_sniffio,
)
from benchmarks.progress import Bar, note
from benchmarks.scenarios import Scenario, picker, prepare
from benchmarks.sending import Pacer, Sampler, Shape, send
from benchmarks.session import (
    Session,
    http_ceiling_of_run,
    noted,
    postgres_ceiling_of_run,
    prepare_session,
)
from benchmarks.stats import all_applied, phase_figures

Mode = Literal["single", "batch", "waited", "direct"]
QUEUED_MODES: tuple[Mode, ...] = ("single", "batch", "waited")
MODE_LABELS: dict[str, str] = {
    "single": "queued single",
    "batch": "queued batch",
    "waited": "queued waited",
    "direct": "direct single",
}
BATCH_SIZE = 1000
BATCH_CONCURRENCY = 4
WAIT_S = 5
CONNECTIONS_PER_CLIENT = 8
SAMPLER_CONNECTIONS = 128


@dataclass(frozen=True)
class Instruments:
    """How the ceilings run and where the processes of the CPU figures are found.

    `http_ceiling_url` None: the benchmark serves the HTTP ceiling itself, on
    `http_ceiling_port` (None: a free port). `ceiling_database_url` None: no PostgreSQL
    ceiling. Named pids take the place of discovery for their group.
    """

    ceilings: bool = True
    http_ceiling_url: str | None = None
    http_ceiling_port: int | None = None
    ceiling_database_url: str | None = None
    redis_url: str | None = None
    api_pids: tuple[int, ...] = ()
    direct_api_pids: tuple[int, ...] = ()
    worker_pids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Workload:
    url: str
    direct_url: str | None
    scenarios: tuple[Scenario, ...]
    modes: tuple[Mode, ...]
    postings: int
    batch_postings: int
    concurrency: int
    accounts: int
    rate: float | None
    runs: int
    pool_shards: int
    client_id: str
    instruments: Instruments = field(default_factory=Instruments)

    def postings_of(self, mode: Mode) -> int:
        """Postings in one phase: batch phases are larger, since a phase of a few
        1,000-posting requests would measure the drain of its last batch, not a rate."""
        return self.batch_postings if mode == "batch" else self.postings

    def phase_modes(self) -> tuple[Mode, ...]:
        """The modes each scenario runs in: the queued ones, then direct if it is there."""
        return (*self.modes, "direct") if self.direct_url else self.modes


@dataclass
class Target:
    """One service under test: connections for sending and for following the sample."""

    name: Literal["queued", "direct"]
    pool: ClientPool
    sampler_pool: ClientPool

    async def aclose(self) -> None:
        await self.pool.aclose()
        await self.sampler_pool.aclose()


@dataclass
class Results:
    phases: list[Figures] = field(default_factory=list)
    accounts: list[Figures] = field(default_factory=list)
    ceilings: list[Figures] = field(default_factory=list)


def open_target(name: Literal["queued", "direct"], url: str, workload: Workload) -> Target:
    shards = math.ceil(SAMPLER_CONNECTIONS / CONNECTIONS_PER_CLIENT)
    return Target(
        name,
        ClientPool(
            url,
            client_id=workload.client_id,
            connections=workload.concurrency,
            shards=workload.pool_shards,
        ),
        ClientPool(
            url, client_id=workload.client_id, connections=SAMPLER_CONNECTIONS, shards=shards
        ),
    )


def shape_of(mode: Mode, workload: Workload) -> Shape:
    if mode == "batch":
        workers = min(BATCH_CONCURRENCY, workload.concurrency)
        return Shape(f"{API_PREFIX}/transactions/batch", workers, paced=False, batch=True)
    wait = f"?wait={WAIT_S}" if mode == "waited" else ""
    return Shape(f"{API_PREFIX}/transactions{wait}", workload.concurrency, paced=True, batch=False)


async def run_phase(
    run: int,
    scenario: Scenario,
    mode: Mode,
    *,
    target: Target,
    accounts: Accounts,
    session: Session,
    deadline: Deadline,
) -> Figures:
    """Send one phase's postings, wait until they are applied, and return its figures."""
    workload = session.workload
    shape = shape_of(mode, workload)
    rng = random.Random(f"{run}/{scenario}/{mode}")
    per_request = BATCH_SIZE if shape.batch else 1
    postings = workload.postings_of(mode)
    requests = prepare(picker(scenario, accounts, rng), postings, per_request=per_request)
    sampler = Sampler(target.sampler_pool, postings=postings, deadline=deadline)
    drain_errors: Counter[str] = Counter()
    census = await session.target_census(target)
    start = Snapshot.take(census)
    with Bar(f"run {run}/{workload.runs} {scenario} {mode}", "sent", postings) as bar:
        pacer = Pacer(workload.rate if shape.paced else None)
        sending = await send(
            requests,
            shape,
            pool=target.pool,
            pacer=pacer,
            sampler=sampler,
            deadline=deadline,
            bar=bar,
        )
        bar.stage("applied", sending.accepted)
        drained_at = await await_drained(
            target.pool.client_for(0),
            deadline=deadline,
            poll_errors=drain_errors,
            on_queued=lambda queued: bar.reach(sending.accepted - queued),
        )
        await sampler.finish()
    end = Snapshot.take(census)
    figures = phase_figures(sending, sampler, drained_at=drained_at, drain_errors=drain_errors)
    figures = {"run": run, "scenario": scenario, "mode": mode, "target": target.name, **figures}
    figures["cpu"] = cpu_figures(start, end, postings=sending.accepted)
    figures["complete"] = not deadline.expired()
    figures["all_applied"] = all_applied(figures, postings=postings)
    return figures


def phase_line(figures: Figures) -> str:
    return (
        f"run {figures['run']} {figures['scenario']:<7} {figures['mode']:<6} "
        f"{figures['accepted']}/{figures['postings_sent']} accepted, "
        f"{figures['accepted_per_s']} accepted/s, {figures['applied_per_s']} applied/s, "
        f"sample {figures['statuses']['posted']}/{figures['sampled']} posted"
        + ("" if figures["all_applied"] else "  NOT ALL APPLIED")
    )


async def opened(
    run: int, target: Target, workload: Workload, deadline: Deadline
) -> tuple[Accounts | None, Figures]:
    """Open this run's accounts on `target`; the accounts and a record of the set-up."""
    title = f"run {run}/{workload.runs} accounts on {target.name}"
    with Bar(title, "opened", workload.accounts + 1, unit="account") as bar:
        accounts = await open_accounts(
            target.pool,
            workload.accounts,
            concurrency=workload.concurrency,
            deadline=deadline,
            on_opened=bar.add,
        )
    record: Figures = {"run": run, "target": target.name, "opened": 0, "shared": False}
    if accounts is not None:
        record |= {
            "opened": len(accounts.wallets) + 1,
            "seconds": round(accounts.elapsed_s, 3),
            "errors": dict(accounts.errors),
        }
    return accounts, record


async def accounts_of_run(
    run: int, targets: list[Target], workload: Workload, results: Results, deadline: Deadline
) -> dict[str, Accounts] | None:
    """Each target's accounts for this run; None when the deadline cut the set-up short."""
    found: dict[str, Accounts] = {}
    for target in targets:
        first = next(iter(found.values()), None)
        if first is not None and await shares_accounts(target.pool.client_for(0), first):
            found[target.name] = first
            results.accounts.append({"run": run, "target": target.name, "shared": True})
            continue
        accounts, record = await opened(run, target, workload, deadline)
        results.accounts.append(record)
        if accounts is None:
            return None
        found[target.name] = accounts
    return found


async def run_round(run: int, session: Session, results: Results, deadline: Deadline) -> bool:
    """One run: its accounts, the HTTP ceiling, then for every scenario its PostgreSQL
    ceiling and every mode; False when cut short."""
    workload, targets = session.workload, session.targets
    accounts = await accounts_of_run(run, list(targets.values()), workload, results, deadline)
    if accounts is None:
        return False
    noted(results, await http_ceiling_of_run(run, session, accounts["queued"], deadline))
    for scenario in workload.scenarios:
        if deadline.expired():
            return False
        noted(results, await postgres_ceiling_of_run(run, scenario, session, deadline))
        for mode in workload.phase_modes():
            if deadline.expired():
                return False
            target = targets["direct" if mode == "direct" else "queued"]
            figures = await run_phase(
                run,
                scenario,
                mode,
                target=target,
                accounts=accounts[target.name],
                session=session,
                deadline=deadline,
            )
            results.phases.append(figures)
            note(phase_line(figures))
    return True


async def run_all(workload: Workload, deadline: Deadline) -> Results:
    """Every run of every scenario in every mode, until done or the deadline passes."""
    skip_absent_sniffio()
    results = Results()
    targets = {"queued": open_target("queued", workload.url, workload)}
    if workload.direct_url:
        targets["direct"] = open_target("direct", workload.direct_url, workload)
    session = Session(workload, targets, Known((), (), (), None, None))
    try:
        await prepare_session(session)
        for run in range(1, workload.runs + 1):
            if not await run_round(run, session, results, deadline):
                break
    finally:
        await session.aclose()
    return results
