"""LedgerFlow's domain: money, accounts, postings, the pure posting engine and the repository.

Nothing in this package imports a web framework or a queue; `api/` and `worker/` call the
same services defined here.
"""
