"""The one error tree of LedgerFlow. Every class carries a stable `code` that clients see.

    LedgerError
    ├── InputError                     refused before anything is stored (HTTP 422/400/413)
    │   ├── InvalidRequest             the body does not have the documented shape
    │   ├── InvalidAmount
    │   ├── UnsupportedCurrency
    │   ├── InvalidEntries             too few or too many entries, mixed currencies
    │   ├── AccountsMustBeDifferent    one account both debited and credited by a posting
    │   ├── Unbalanced
    │   ├── InvalidMetadata
    │   ├── InvalidText                NUL characters or unpaired surrogates in a text field
    │   ├── InvalidFlags
    │   ├── InvalidIdempotencyKey
    │   ├── HostNotAllowed             the Host header names none of the allowed hosts (400)
    │   └── RequestTimeout             the body did not arrive in time (408)
    ├── Refusal                        refused on ledger state; final for its key
    │   ├── AccountNotFoundForPosting
    │   ├── AccountInactive
    │   ├── CurrencyMismatch
    │   ├── InsufficientFunds          debits_must_not_exceed_credits would break
    │   ├── ExceedsDebits              credits_must_not_exceed_debits would break
    │   └── BalanceOverflow
    ├── Unauthenticated                no key, or not a live one (HTTP 401)
    ├── Forbidden                      the key lacks the scope the endpoint needs (HTTP 403)
    ├── IdempotencyConflict            same key, different body (HTTP 409)
    ├── NotFound                       a resource that does not exist (HTTP 404)
    │   ├── AccountNotFound
    │   ├── TransactionNotFound
    │   └── PostingNotFound
    ├── Overloaded                     the service cannot take more now (HTTP 503)
    │   ├── PartitionLagging           one partition is too far behind (HTTP 429)
    │   └── RateLimited                an API key sends faster than its rate (HTTP 429)
    ├── LeaseLost                      a worker no longer owns the partition it was applying
    └── TransientFault                 database or queue hiccup; retried a bounded number of times

Domain refusals are final and never retried; transient faults are retried with backoff;
anything else is a programmer error and surfaces as a logged 500.
"""

from __future__ import annotations

from typing import ClassVar

QUOTED_LENGTH_MAX = 40


def quoted(text: str, length_max: int = QUOTED_LENGTH_MAX) -> str:
    """How a detail quotes what a client sent: its repr, cut to `length_max` characters, so
    that a 300,000-character value is not echoed back whole."""
    if len(text) <= length_max:
        return repr(text)
    return f"{text[:length_max]!r}... ({len(text)} characters)"


class LedgerError(Exception):
    """Base of every error LedgerFlow raises on purpose."""

    code: ClassVar[str] = "ledger_error"
    title: ClassVar[str] = "Ledger error"
    http_status: ClassVar[int] = 400

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title


class InputError(LedgerError):
    """Raised when a request is wrong in itself, before any ledger state is read."""

    code = "invalid_request"
    title = "Invalid request"
    http_status = 422


class InvalidRequest(InputError):
    """Raised when the body is not valid JSON or does not have the documented shape."""


class MalformedJson(InputError):
    """Raised when the body is not parseable JSON."""

    code = "malformed_json"
    title = "Malformed JSON"
    http_status = 400


class BodyTooLarge(InputError):
    """Raised when the body is larger than the service accepts."""

    code = "body_too_large"
    title = "Body too large"
    http_status = 413


class InvalidAmount(InputError):
    """Raised when an amount is not a positive decimal string within the currency's exponent,
    or is above the largest amount of one entry."""

    code = "invalid_amount"
    title = "Invalid amount"


class UnsupportedCurrency(InputError):
    """Raised when a currency is not an ISO 4217 code with a minor unit."""

    code = "unsupported_currency"
    title = "Unsupported currency"


class InvalidEntries(InputError):
    """Raised when a transaction has fewer than 2 or more than 64 entries, or mixed currencies."""

    code = "invalid_entries"
    title = "Invalid entries"


class AccountsMustBeDifferent(InputError):
    """Raised when a transaction debits and credits the same account: a posting moves money
    between different accounts, and one that moved none would only inflate both totals."""

    code = "accounts_must_be_different"
    title = "Accounts must be different"


class Unbalanced(InputError):
    """Raised when a transaction's debits do not equal its credits."""

    code = "unbalanced"
    title = "Unbalanced transaction"


class InvalidMetadata(InputError):
    """Raised when metadata is not a small map of short strings."""

    code = "invalid_metadata"
    title = "Invalid metadata"


class InvalidText(InputError):
    """Raised when a text field holds a NUL character or an unpaired UTF-16 surrogate."""

    code = "invalid_text"
    title = "Invalid text"


class InvalidFlags(InputError):
    """Raised when an account asks for both flags: it could then never move."""

    code = "invalid_flags"
    title = "Invalid account flags"


class InvalidIdempotencyKey(InputError):
    """Raised when the idempotency key is missing or has characters outside the allowed set."""

    code = "invalid_idempotency_key"
    title = "Invalid idempotency key"


class InvalidCursor(InputError):
    """Raised when a pagination cursor was not produced by this service."""

    code = "invalid_cursor"
    title = "Invalid cursor"


class HostNotAllowed(InputError):
    """Raised when a request's Host header names none of `allowed_hosts`: a browser led there
    by DNS rebinding sends the attacker's name as its Host."""

    code = "host_not_allowed"
    title = "Host not allowed"
    http_status = 400


class RequestTimeout(InputError):
    """Raised when a request's body does not arrive whole within `body_read_timeout_s`."""

    code = "request_timeout"
    title = "Request timeout"
    http_status = 408


class Refusal(LedgerError):
    """Raised (or recorded) when ledger state refuses a posting. Final for its key."""

    code = "refused"
    title = "Posting refused"
    http_status = 422


class AccountNotFoundForPosting(Refusal):
    """Raised when a posting names an account that does not exist."""

    code = "account_not_found"
    title = "Account not found"


class AccountInactive(Refusal):
    """Raised when a posting names an inactive account."""

    code = "account_inactive"
    title = "Account inactive"


class CurrencyMismatch(Refusal):
    """Raised when a posting's currency differs from one of its accounts' currency."""

    code = "currency_mismatch"
    title = "Currency mismatch"


class InsufficientFunds(Refusal):
    """Raised when an account flagged debits_must_not_exceed_credits would break its flag."""

    code = "insufficient_funds"
    title = "Insufficient funds"


class ExceedsDebits(Refusal):
    """Raised when an account flagged credits_must_not_exceed_debits would break its flag."""

    code = "exceeds_debits"
    title = "Credits would exceed debits"


class BalanceOverflow(Refusal):
    """Raised when an account's posted totals would pass the largest storable total,
    `money.TOTAL_MAX`. No history within the per-entry maximum reaches it (see
    docs/ARCHITECTURE.md), so this is a guard, held by the database's column a second time."""

    code = "balance_overflow"
    title = "Balance overflow"


# Every code a posting can end `rejected` with: the refusals on ledger state, and the two
# stateless rules that the engine holds a second time (`engine.check_entries`) for postings
# accepted under an older version or a larger `entry_amount_max_minor`.
REFUSALS: dict[str, type[LedgerError]] = {
    cls.code: cls
    for cls in (
        AccountsMustBeDifferent,
        InvalidAmount,
        AccountNotFoundForPosting,
        AccountInactive,
        CurrencyMismatch,
        InsufficientFunds,
        ExceedsDebits,
        BalanceOverflow,
    )
}


class IdempotencyConflict(LedgerError):
    """Raised when an idempotency key is reused with a different body."""

    code = "idempotency_conflict"
    title = "Idempotency conflict"
    http_status = 409


class Unauthenticated(LedgerError):
    """Raised when a request carries no API key, or one that is unknown or revoked."""

    code = "unauthenticated"
    title = "Unauthenticated"
    http_status = 401


class Forbidden(LedgerError):
    """Raised when the request's key lacks the scope the endpoint needs."""

    code = "forbidden"
    title = "Forbidden"
    http_status = 403

    def __init__(self, detail: str = "", *, scope: str = "") -> None:
        super().__init__(detail)
        self.scope = scope


class NotFound(LedgerError):
    """Raised when a requested resource does not exist."""

    code = "not_found"
    title = "Not found"
    http_status = 404


class AccountNotFound(NotFound):
    """Raised when an account looked up by id does not exist."""

    code = "account_not_found"
    title = "Account not found"


class TransactionNotFound(NotFound):
    """Raised when a transaction looked up by id does not exist."""

    code = "transaction_not_found"
    title = "Transaction not found"


class PostingNotFound(NotFound):
    """Raised when a status URL names an idempotency key that was never accepted."""

    code = "posting_not_found"
    title = "Posting not found"


class Overloaded(LedgerError):
    """Raised when the service cannot accept more work right now.

    `retry_after_s` becomes the Retry-After header; `facts` (the bound that was passed and
    the reading that passed it) go into the problem body.
    """

    code = "overloaded"
    title = "Service overloaded"
    http_status = 503

    def __init__(
        self, detail: str = "", *, retry_after_s: int = 1, facts: dict[str, object] | None = None
    ) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s
        self.facts = dict(facts or {})


class PartitionLagging(Overloaded):
    """Raised when a posting routes to a partition whose oldest queued posting is too old."""

    code = "partition_lagging"
    title = "Partition lagging"
    http_status = 429


class RateLimited(Overloaded):
    """Raised when an API key sends faster than its rate (`ledgerflow keys create
    --rate-per-s`); nothing of the request was stored."""

    code = "rate_limited"
    title = "Rate limited"
    http_status = 429


class LeaseLost(LedgerError):
    """Raised in a worker whose lease on a partition was taken over: its batch must not commit."""

    code = "lease_lost"
    title = "Lease lost"
    http_status = 409

    def __init__(self, detail: str = "", *, partitions: frozenset[int] = frozenset()) -> None:
        super().__init__(detail)
        self.partitions = partitions


class TransientFault(LedgerError):
    """Raised when the database or queue failed in a way that a retry may cure."""

    code = "transient_fault"
    title = "Transient fault"
    http_status = 503

    def __init__(self, detail: str = "", *, sqlstate: str | None = None) -> None:
        super().__init__(detail)
        self.sqlstate = sqlstate
