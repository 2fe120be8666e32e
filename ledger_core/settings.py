"""Configuration from the environment (prefix LEDGERFLOW_). One instance per process.

`partitions` must be the same for every API and worker process of one deployment: it
decides which queue a posting goes to. So must `entry_amount_max_minor`, or the worker
refuses postings that intake accepted.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ledger_core.rules import ENTRY_AMOUNT_CEILING_MINOR, ENTRY_AMOUNT_MAX_MINOR


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEDGERFLOW_", extra="ignore")

    database_url: str | None = None
    redis_url: str | None = None
    partitions: int = Field(default=16, ge=1, le=1024)
    # "direct" applies each posting synchronously in the API, one transaction per posting:
    # the synchronous ledger this service replaces, kept to benchmark the queue against.
    mode: Literal["queued", "direct"] = "queued"

    # API keys. "off" serves every endpoint without a key, as the "default" client of the
    # "default" ledger with every scope; the service then says so at start, on /ready and
    # on /ops. A key looked up is trusted for `key_cache_s`: a revocation takes effect in
    # every API process within that time.
    auth: Literal["on", "off"] = "on"
    key_cache_s: float = Field(default=0.5, ge=0, le=1)

    # Intake: group commit of concurrent requests.
    intake_window_ms: float = Field(default=2.0, ge=0, le=100)
    intake_batch_max: int = Field(default=1000, ge=1, le=10_000)
    intake_queue_max: int = Field(default=20_000, ge=1)
    body_bytes_max: int = 4 * 1024 * 1024
    # uvicorn bounds neither the headers nor the body of a request. A connection whose
    # request headers are not complete this long after it opened (or after the request's
    # first byte) is closed (`ledgerflow serve` and `dev`, ledgerflow/http.py); a body not
    # whole this long after its headers is answered 408 and its connection closed.
    header_read_timeout_s: float = Field(default=10.0, gt=0, le=300)
    body_read_timeout_s: float = Field(default=10.0, gt=0, le=300)
    # The Host names the API answers to, comma-separated; any other gets 400
    # host_not_allowed (DNS rebinding). Loopback only unless set: a deployment behind a
    # proxy names its public host, and "*" (any host) must be asked for explicitly.
    allowed_hosts: Annotated[list[str], NoDecode] = ["localhost", "127.0.0.1", "::1"]
    # The largest amount of one entry, in minor units of any currency: intake refuses more
    # (422 invalid_amount) and the worker's engine refuses it again. Must be equal in every
    # API and worker process; at most BIGINT_MAX // 64, so one posting's debits fit a BIGINT.
    entry_amount_max_minor: int = Field(
        default=ENTRY_AMOUNT_MAX_MINOR, ge=1, le=ENTRY_AMOUNT_CEILING_MINOR
    )

    # Backpressure: a posting routed to a partition whose oldest queued posting is older
    # than `lag_max_s` gets 429; any posting gets 503 while more than `queued_max` are
    # queued in all. Read from PostgreSQL every `lag_refresh_s`. 0 turns a bound off.
    lag_max_s: float = Field(default=30.0, ge=0)
    queued_max: int = Field(default=1_000_000, ge=0)
    lag_refresh_s: float = Field(default=0.5, gt=0, le=60)

    # Worker: batches, leases and the reconciler.
    apply_batch_max: int = Field(default=500, ge=1, le=5000)
    lease_ttl_s: float = Field(default=10.0, gt=0)
    reconcile_interval_s: float = Field(default=5.0, gt=0)
    stale_after_s: float = Field(default=5.0, ge=0)
    transient_retries_max: int = Field(default=5, ge=0)

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        """LEDGERFLOW_ALLOWED_HOSTS=api.example.com,localhost -> a list of names."""
        if isinstance(value, str):
            return [host.strip() for host in value.split(",") if host.strip()]
        return value

    def sqlalchemy_url(self) -> str:
        """The database URL with the psycopg 3 driver named, as SQLAlchemy wants it."""
        url = self.database_url or "sqlite:///ledgerflow-dev.db"
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url
