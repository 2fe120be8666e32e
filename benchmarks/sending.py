"""The send phase: prepared requests out, answers in, a sample followed until final.

Requests go out from a fixed number of tasks, optionally paced to a target rate. Every
answer is timed from the moment its request was sent. Every `every`-th posting (evenly
spread over the phase, at most SAMPLE_MAX) is followed from the instant its 202 arrives:
a task long-polls its status URL (`?wait=`) on a separate pool of connections and notes
when the final answer arrives. That accept-to-applied time is an upper bound: it includes
the poll's own round trip, and a wait for a free poll connection if the pool is full.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from benchmarks.e2e import (
    API_PREFIX,
    FINAL_STATUSES,
    JSON_HEADERS,
    POLL_ERRORS_MAX,
    POLL_WAIT_S,
    ClientPool,
    Deadline,
    fan_out,
)
from benchmarks.progress import Bar
from benchmarks.scenarios import Request

SAMPLE_MAX = 500


@dataclass(frozen=True)
class Shape:
    """How a mode sends: where to, how many tasks, paced or not, batch answers or not."""

    url: str
    workers: int
    paced: bool
    batch: bool


@dataclass
class Sending:
    """What the send phase saw: counts, request latencies, answered statuses, errors."""

    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None
    cpu_started_s: float = field(default_factory=time.process_time)
    cpu_s: float = 0.0
    requests_sent: int = 0
    requests_answered: int = 0
    postings_sent: int = 0
    accepted: int = 0
    latencies_s: list[float] = field(default_factory=list)
    # A waited posting's stages as its answer's Server-Timing header gave them, in seconds.
    stages_s: dict[str, list[float]] = field(default_factory=dict)
    answered: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    # Requests sent again after the connection dropped: answered in the end, not errors.
    retried: Counter[str] = field(default_factory=Counter)

    def answer_arrived(self) -> float:
        self.requests_answered += 1
        self.finished = time.perf_counter()
        return self.finished

    def close(self) -> None:
        """Note this process's CPU time; count requests cut off by the deadline as errors."""
        self.cpu_s = time.process_time() - self.cpu_started_s
        unanswered = self.requests_sent - self.requests_answered
        if unanswered:
            self.errors["no answer by deadline"] += unanswered


class Pacer:
    """Spaces request starts 1/rate apart from the first one; a no-op without a rate.

    A service slower than the rate falls behind the schedule, and the tasks then send as
    fast as it answers: the achieved rate is what the figures report.
    """

    def __init__(self, per_s: float | None) -> None:
        self.interval_s = 1 / per_s if per_s else 0.0
        self.next_at: float | None = None

    async def wait(self) -> None:
        if not self.interval_s:
            return
        now = time.perf_counter()
        slot = now if self.next_at is None else self.next_at
        self.next_at = slot + self.interval_s
        if slot > now:
            await asyncio.sleep(slot - now)


class Sampler:
    """Follows every `every`-th posting from its answer until the service calls it final."""

    def __init__(
        self, pool: ClientPool, *, postings: int, deadline: Deadline, follow: bool = True
    ) -> None:
        self.pool = pool
        # The HTTP ceiling stores nothing: there is nothing to follow there.
        self.follow_answers = follow
        self.every = max(1, math.ceil(postings / SAMPLE_MAX))
        self.deadline = deadline
        self.sampled = 0
        self.statuses: Counter[str] = Counter()
        self.poll_errors: Counter[str] = Counter()
        self.latencies_s: list[float] = []
        self.followers: set[asyncio.Task[None]] = set()

    def note(self, index: int, key: str, status: str, answered_at: float) -> None:
        """Posting `index` was answered `status`: count it if final, else follow it."""
        if not self.follow_answers or index % self.every:
            return
        self.sampled += 1
        if status in FINAL_STATUSES:
            self.statuses[status] += 1
            return
        client = self.pool.client_for(self.sampled)
        task = asyncio.create_task(self.follow(client, key, answered_at))
        self.followers.add(task)
        task.add_done_callback(self.followers.discard)

    async def follow(self, client: httpx.AsyncClient, key: str, answered_at: float) -> None:
        """Long-poll one key's status URL until final, an error answer, or too many errors."""
        errors = 0
        while errors < POLL_ERRORS_MAX:
            # At least one second, so a queued answer is never instant; the deadline cancels.
            wait_s = max(1, min(POLL_WAIT_S, math.ceil(self.deadline.remaining_s())))
            try:
                response = await client.get(f"{API_PREFIX}/postings/{key}", params={"wait": wait_s})
                status = response.json().get("status") if response.is_success else None
            except (httpx.HTTPError, ValueError) as error:
                self.poll_errors[type(error).__name__] += 1
                errors += 1
                continue
            if status in FINAL_STATUSES:
                self.latencies_s.append(time.perf_counter() - answered_at)
                self.statuses[status] += 1
                return
            if status != "queued":
                self.poll_errors[f"status {response.status_code}"] += 1
                return

    async def finish(self) -> None:
        """Wait for every follower, or until the deadline (which cancels the rest)."""
        if not self.followers:
            return
        try:
            async with asyncio.timeout(self.deadline.remaining_s()):
                await asyncio.gather(*self.followers)
        except TimeoutError:
            return

    @property
    def unfinished(self) -> int:
        return self.sampled - self.statuses.total()


Answers = list[tuple[int, str, str]] | str


def item_answers(request: Request, response: httpx.Response) -> Answers:
    """(offset, key, status) of a single request's accepted posting, or the error it met."""
    if response.status_code not in (httpx.codes.CREATED, httpx.codes.ACCEPTED):
        code = response.json().get("code") if response.status_code == 422 else None
        return f"{response.status_code} {code}" if code else str(response.status_code)
    return [(0, request.keys[0], str(response.json()["status"]))]


def batch_answers(response: httpx.Response, sending: Sending) -> Answers:
    """(offset, key, status) per accepted item of a batch; refused items count as errors."""
    if not response.is_success:
        return str(response.status_code)
    answers = []
    for offset, item in enumerate(response.json()["results"]):
        # A posting's status is a word; a problem object's status is its HTTP code.
        if isinstance(item.get("status"), str):
            answers.append((offset, item["idempotency_key"], item["status"]))
        else:
            sending.errors[f"item {item.get('status')} {item.get('code')}"] += 1
    return answers


TRANSPORT_RETRIES = 2


async def post_retrying(
    client: httpx.AsyncClient, url: str, body: bytes, sending: Sending
) -> httpx.Response:
    """POST, sending the same body again when the connection failed before an answer came
    (a kept-alive connection closed by the server as it was reused): the idempotency keys
    make that safe, as for any client of the ledger. Each retry is counted."""
    for attempt in range(TRANSPORT_RETRIES + 1):
        try:
            return await client.post(url, content=body, headers=JSON_HEADERS)
        except httpx.TransportError as error:
            if attempt == TRANSPORT_RETRIES:
                raise
            sending.retried[type(error).__name__] += 1
    raise AssertionError("unreachable")


async def send(
    requests: list[Request],
    shape: Shape,
    *,
    pool: ClientPool,
    pacer: Pacer,
    sampler: Sampler,
    deadline: Deadline,
    bar: Bar,
) -> Sending:
    """Send every request from `shape.workers` tasks until done or the deadline passes."""
    sending = Sending()
    todo = iter(requests)

    async def work(client: httpx.AsyncClient) -> None:
        for request in todo:
            await pacer.wait()
            sending.requests_sent += 1
            sending.postings_sent += len(request.keys)
            began = time.perf_counter()
            try:
                response = await post_retrying(client, shape.url, request.body, sending)
                answers = (
                    batch_answers(response, sending)
                    if shape.batch
                    else item_answers(request, response)
                )
            except (httpx.HTTPError, ValueError) as error:
                answers = type(error).__name__
            answered_at = sending.answer_arrived()
            bar.add(len(request.keys))
            if isinstance(answers, str):
                sending.errors[answers] += 1
                continue
            sending.latencies_s.append(answered_at - began)
            note_stages(sending, response.headers.get("server-timing"))
            note_answers(sending, sampler, request, answers, answered_at)

    await fan_out(shape.workers, work, pool=pool, deadline=deadline)
    sending.close()
    return sending


def note_stages(sending: Sending, header: str | None) -> None:
    """Add the stages of a `Server-Timing` header (`name;dur=ms, ...`) to `sending`."""
    if not header:
        return
    for part in header.split(","):
        name, _, duration = part.strip().partition(";dur=")
        try:
            sending.stages_s.setdefault(name, []).append(float(duration) / 1000)
        except ValueError:
            continue


def note_answers(
    sending: Sending,
    sampler: Sampler,
    request: Request,
    answers: list[tuple[int, str, str]],
    answered_at: float,
) -> None:
    """Count accepted postings and their answered statuses; hand the sample to `sampler`."""
    sending.accepted += len(answers)
    for offset, key, status in answers:
        sending.answered[status] += 1
        sampler.note(request.first + offset, key, status, answered_at)
