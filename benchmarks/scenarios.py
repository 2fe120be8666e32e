"""Who pays whom: the benchmark's scenarios, and the request bodies built from them.

Every posting moves AMOUNT USD from a debit account to a different credit account:

- `uniform`: two distinct wallets drawn uniformly at random;
- `hot`: a random wallet to the one settlement account, like the seed's own benchmark;
- `zipf`: both sides drawn from a Zipf(s=1.1) distribution over the wallets, so a few
  wallets carry most of the traffic.

Bodies are serialised before the send phase starts, so building them costs the load
generator no CPU while it is being timed.
"""

from __future__ import annotations

import itertools
import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from benchmarks.e2e import AMOUNT, CURRENCY, Accounts

Scenario = Literal["uniform", "hot", "zipf"]
SCENARIOS: tuple[Scenario, ...] = ("uniform", "hot", "zipf")
ZIPF_S = 1.1

Pick = Callable[[], tuple[str, str]]


@dataclass(frozen=True)
class Request:
    """One HTTP request's body and the idempotency keys it carries, in order.

    `first` is the number of its first posting within the phase (0-based).
    """

    first: int
    keys: list[str]
    body: bytes


def zipf_cumulative(count: int, s: float = ZIPF_S) -> list[float]:
    """Cumulative weights 1/rank**s for ranks 1..count, for random.choices."""
    return list(itertools.accumulate(1 / rank**s for rank in range(1, count + 1)))


def picker(scenario: Scenario, accounts: Accounts, rng: random.Random) -> Pick:
    """A function that draws (debit account, credit account) for `scenario`."""
    wallets = accounts.wallets
    if scenario == "uniform":

        def uniform() -> tuple[str, str]:
            debit, credit = rng.sample(wallets, 2)
            return debit, credit

        return uniform
    if scenario == "hot":
        return lambda: (rng.choice(wallets), accounts.settlement)
    cumulative = zipf_cumulative(len(wallets))

    def zipf() -> tuple[str, str]:
        debit = rng.choices(wallets, cum_weights=cumulative)[0]
        credit = debit
        while credit == debit:
            credit = rng.choices(wallets, cum_weights=cumulative)[0]
        return debit, credit

    return zipf


def posting(pick: Pick) -> dict[str, Any]:
    """A new posting of AMOUNT between the picked accounts, under a fresh key."""
    debit, credit = pick()
    return {
        "idempotency_key": uuid.uuid4().hex,
        "currency": CURRENCY,
        "entries": [
            {"account_id": debit, "direction": "debit", "amount": AMOUNT},
            {"account_id": credit, "direction": "credit", "amount": AMOUNT},
        ],
    }


def encoded(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def prepare(pick: Pick, postings: int, *, per_request: int) -> list[Request]:
    """`postings` postings as requests of `per_request` (1: a bare posting, else a batch)."""
    requests = []
    for first in range(0, postings, per_request):
        items = [posting(pick) for _ in range(min(per_request, postings - first))]
        keys = [item["idempotency_key"] for item in items]
        body = encoded(items[0]) if per_request == 1 else encoded({"transactions": items})
        requests.append(Request(first, keys, body))
    return requests
