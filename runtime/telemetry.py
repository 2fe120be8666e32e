"""What workers did, counted where every process can read it.

Each worker keeps its own totals (batches, postings applied, last error) for its row in the
worker registry, and adds cluster-wide counters and histograms to Redis hashes: postings
by outcome and code, batch sizes, apply latency, transient retries by SQLSTATE, lease
changes, and per-second applied/refused counts per partition (kept two minutes) from which
`ledgerflow ops status` and the `/ops` page compute rates. The API's `/metrics` reads these
hashes, so one scrape of any API process shows the whole deployment's workers.

Counters live in Redis, which keeps nothing on disk here: a Redis restart resets them,
which Prometheus treats as a counter reset. PostgreSQL stays the record of every posting.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError

from ledger_core.errors import TransientFault
from ledger_core.model import Outcome, RequestId

log = logging.getLogger(__name__)

COUNTERS_KEY = "ledgerflow:metrics:counters"
BATCH_SIZE_KEY = "ledgerflow:metrics:batch_size"
APPLY_SECONDS_KEY = "ledgerflow:metrics:apply_seconds"
RATE_KEY_PREFIX = "ledgerflow:rate:"
RATE_KEEP_S = 120
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
APPLY_SECONDS_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


def _bucket(value: float, bounds: Sequence[float]) -> str:
    for bound in bounds:
        if value <= bound:
            return f"le:{bound:g}"
    return "le:+Inf"


def rate_key(second: int) -> str:
    return f"{RATE_KEY_PREFIX}{second}"


@dataclass
class Telemetry:
    redis: Redis
    batches: int = 0
    applied: int = 0
    last_error: str | None = None
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def record_batch(
        self,
        pipeline: Pipeline,
        outcomes: Sequence[Outcome],
        partition_of: Mapping[RequestId, int],
        seconds: float,
    ) -> None:
        """Queue a committed batch's counters on `pipeline` (the caller executes it);
        `partition_of` maps each request id to its partition."""
        with self._guard:
            self.batches += 1
            self.applied += len(outcomes)
        applied: Counter[int] = Counter()
        refused: Counter[int] = Counter()
        for outcome in outcomes:
            partition = partition_of.get(outcome.request_id, 0)
            if outcome.posted:
                applied[partition] += 1
            else:
                refused[partition] += 1
                pipeline.hincrby(COUNTERS_KEY, f"postings|rejected|{outcome.code}", 1)
        posted = sum(applied.values())
        if posted:
            pipeline.hincrby(COUNTERS_KEY, "postings|posted|", posted)
        pipeline.hincrby(BATCH_SIZE_KEY, _bucket(len(outcomes), BATCH_SIZE_BUCKETS), 1)
        pipeline.hincrby(BATCH_SIZE_KEY, "sum", len(outcomes))
        pipeline.hincrby(BATCH_SIZE_KEY, "count", 1)
        pipeline.hincrby(APPLY_SECONDS_KEY, _bucket(seconds, APPLY_SECONDS_BUCKETS), 1)
        pipeline.hincrbyfloat(APPLY_SECONDS_KEY, "sum", seconds)
        pipeline.hincrby(APPLY_SECONDS_KEY, "count", 1)
        key = rate_key(int(time.time()))
        for partition, count in applied.items():
            pipeline.hincrby(key, f"p{partition}:applied", count)
        for partition, count in refused.items():
            pipeline.hincrby(key, f"p{partition}:refused", count)
        pipeline.expire(key, RATE_KEEP_S)

    def count(self, name: str, amount: int = 1) -> None:
        """Add to a cluster counter now, e.g. `leases|claimed` or `postings|failed|apply_failed`."""
        try:
            self.redis.hincrby(COUNTERS_KEY, name, amount)
        except RedisError as error:
            log.warning("could not count %s: %r", name, error)

    def retried(self, fault: TransientFault) -> None:
        self.count(f"retries|{fault.sqlstate or 'other'}")

    def error(self, text: str) -> None:
        with self._guard:
            self.last_error = text[:2000]

    def totals(self) -> tuple[int, int, str | None]:
        with self._guard:
            return self.batches, self.applied, self.last_error


@dataclass(frozen=True)
class Histogram:
    buckets: list[tuple[float, int]]  # (upper bound, cumulative count), +Inf last
    count: int
    total: float


@dataclass(frozen=True)
class ClusterCounters:
    postings: dict[tuple[str, str], int]  # (outcome, code) -> count
    retries: dict[str, int]  # SQLSTATE -> count
    leases: dict[str, int]  # change -> count
    batches_fenced: int  # batches refused because their lease was taken over
    batch_size: Histogram
    apply_seconds: Histogram


def _histogram(raw: dict[bytes, bytes], bounds: Iterable[float]) -> Histogram:
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    running = 0
    buckets: list[tuple[float, int]] = []
    for bound in [*bounds, float("inf")]:
        name = "le:+Inf" if bound == float("inf") else f"le:{bound:g}"
        running += int(fields.get(name, 0))
        buckets.append((bound, running))
    return Histogram(buckets, int(fields.get("count", 0)), float(fields.get("sum", 0)))


def read_counters(redis: Redis) -> ClusterCounters:
    with redis.pipeline(transaction=False) as pipeline:
        pipeline.hgetall(COUNTERS_KEY)
        pipeline.hgetall(BATCH_SIZE_KEY)
        pipeline.hgetall(APPLY_SECONDS_KEY)
        counters, batch_size, apply_seconds = pipeline.execute()
    postings: dict[tuple[str, str], int] = {}
    retries: dict[str, int] = {}
    leases: dict[str, int] = {}
    fenced = 0
    for raw_name, raw_value in counters.items():
        name = raw_name.decode()
        kind, _, rest = name.partition("|")
        value = int(raw_value)
        if kind == "postings":
            outcome, _, code = rest.partition("|")
            postings[(outcome, code)] = value
        elif kind == "retries":
            retries[rest] = value
        elif kind == "leases":
            leases[rest] = value
        elif name == "batches|fenced":
            fenced = value
    return ClusterCounters(
        postings=postings,
        retries=retries,
        leases=leases,
        batches_fenced=fenced,
        batch_size=_histogram(batch_size, BATCH_SIZE_BUCKETS),
        apply_seconds=_histogram(apply_seconds, APPLY_SECONDS_BUCKETS),
    )


def read_rates(redis: Redis, window_s: int = 10) -> dict[int, tuple[float, float]]:
    """{partition: (applied/s, refused/s)} over the last `window_s` whole seconds."""
    now = int(time.time())
    seconds = range(now - window_s, now)
    with redis.pipeline(transaction=False) as pipeline:
        for second in seconds:
            pipeline.hgetall(rate_key(second))
        samples = pipeline.execute()
    applied: dict[int, int] = {}
    refused: dict[int, int] = {}
    for sample in samples:
        for raw_name, raw_value in sample.items():
            name, _, kind = raw_name.decode().partition(":")
            partition = int(name[1:])
            target = applied if kind == "applied" else refused
            target[partition] = target.get(partition, 0) + int(raw_value)
    return {
        p: (applied.get(p, 0) / window_s, refused.get(p, 0) / window_s)
        for p in set(applied) | set(refused)
    }
