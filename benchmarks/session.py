"""What every phase of one benchmark shares, and the ceilings' place in each run.

A `Session` holds the targets, the HTTP ceiling (served here unless given), and the pids
that stay put (Redis, the postmaster, the ones named on the command line). It is made
ready once, before the first run, and closed once, after the last: the HTTP ceiling's
process, if this benchmark started it, is ended by its pid then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from benchmarks.ceilings import (
    HttpCeiling,
    http_ceiling_phase,
    postgres_ceiling_phase,
    start_http_ceiling,
)
from benchmarks.cpu import Census
from benchmarks.discovery import Known, census_of, postmaster_pid, redis_pid
from benchmarks.e2e import Accounts, ClientPool, Deadline, Figures, check_service
from benchmarks.postgres_ceiling import prepare_scratch
from benchmarks.progress import note
from benchmarks.scenarios import Scenario

if TYPE_CHECKING:
    from benchmarks.runner import Results, Target, Workload


@dataclass
class Session:
    """What every phase of the benchmark shares: the targets, the ceilings, the pids."""

    workload: Workload
    targets: dict[str, Target]
    known: Known
    http_ceiling: HttpCeiling | None = None
    http_ceiling_pool: ClientPool | None = None

    async def census(self, api_url: str | None, named_api_pids: tuple[int, ...] = ()) -> Census:
        """The processes of a phase whose API under load is at `api_url` (None: none)."""
        return await census_of(
            api_url,
            named_api_pids=named_api_pids,
            status=self.targets["queued"].pool.client_for(0),
            known=self.known,
        )

    async def target_census(self, target: Target) -> Census:
        instruments = self.workload.instruments
        direct = target.name == "direct"
        named = instruments.direct_api_pids if direct else instruments.api_pids
        return await self.census(target.pool.url, named)

    async def aclose(self) -> None:
        for target in self.targets.values():
            await target.aclose()
        if self.http_ceiling_pool is not None:
            await self.http_ceiling_pool.aclose()
        if self.http_ceiling is not None:
            self.http_ceiling.stop()


def ceiling_line(figures: Figures) -> str:
    scenario = f" {figures['scenario']}" if figures["scenario"] else ""
    return (
        f"run {figures['run']} {figures['ceiling']} ceiling{scenario}: "
        f"{figures['postings']} postings, {figures['per_s']}/s"
        + ("" if figures["complete"] else "  INCOMPLETE")
    )


async def http_ceiling_of_run(
    run: int, session: Session, accounts: Accounts, deadline: Deadline
) -> Figures | None:
    if session.http_ceiling is None or session.http_ceiling_pool is None:
        return None
    workload = session.workload
    return await http_ceiling_phase(
        run,
        pool=session.http_ceiling_pool,
        accounts=accounts,
        postings=workload.postings,
        concurrency=workload.concurrency,
        census=await session.census(session.http_ceiling.url),
        deadline=deadline,
    )


async def postgres_ceiling_of_run(
    run: int, scenario: Scenario, session: Session, deadline: Deadline
) -> Figures | None:
    workload = session.workload
    database_url = workload.instruments.ceiling_database_url
    if not workload.instruments.ceilings or database_url is None:
        return None
    return postgres_ceiling_phase(
        run,
        scenario,
        database_url=database_url,
        accounts=workload.accounts,
        postings=workload.batch_postings,
        census=await session.census(None),
        deadline=deadline,
    )


def noted(results: Results, figures: Figures | None) -> None:
    if figures is not None:
        results.ceilings.append(figures)
        note(ceiling_line(figures))


async def prepare_session(session: Session) -> None:
    """Check the services, ready the scratch database, find the servers' pids and start
    (or reach) the HTTP ceiling; what it started, `session.aclose` ends."""
    for target in session.targets.values():
        await check_service(target.pool.client_for(0))
    workload = session.workload
    instruments = workload.instruments
    database_url = instruments.ceiling_database_url if instruments.ceilings else None
    if database_url is not None:
        prepare_scratch(database_url)
    session.known = Known(
        api_pids=instruments.api_pids,
        direct_api_pids=instruments.direct_api_pids,
        worker_pids=instruments.worker_pids,
        redis=redis_pid(instruments.redis_url),
        postmaster=postmaster_pid(database_url),
    )
    if not instruments.ceilings:
        return
    if instruments.http_ceiling_url:
        session.http_ceiling = HttpCeiling(instruments.http_ceiling_url)
    else:
        session.http_ceiling = await start_http_ceiling(instruments.http_ceiling_port)
    session.http_ceiling_pool = ClientPool(
        session.http_ceiling.url,
        client_id=workload.client_id,
        connections=workload.concurrency,
        shards=workload.pool_shards,
    )
    await check_service(session.http_ceiling_pool.client_for(0))
