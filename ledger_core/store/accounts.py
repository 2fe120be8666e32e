"""Accounts: created, read, listed and switched on or off, each within one ledger.

Posted totals are never written here: only an applied batch (`store.apply`) changes them,
under the row lock it holds. Every read and change names the ledger (tenant) it acts in:
an account of another ledger is not found, as one that does not exist.
"""

from __future__ import annotations

from sqlalchemy import Connection, insert, select, update

from ledger_core.model import Account, AccountId, AccountStatus
from ledger_core.store.rows import account_from_row, decode_cursor, encode_cursor
from ledger_core.store.tables import accounts


class AccountStatements:
    connection: Connection

    def insert_account(self, account: Account) -> Account:
        row = self.connection.execute(
            insert(accounts)
            .values(
                id=account.id,
                name=account.name,
                account_type=account.account_type.value,
                currency=account.currency,
                status=account.status.value,
                flags=int(account.flags),
                ledger=account.ledger,
                # An account opens with nothing posted. Written here rather than left to the
                # column default, whose form differs by dialect (`tables.Total`).
                debits_posted=0,
                credits_posted=0,
            )
            .returning(*accounts.c)
        ).one()
        return account_from_row(row)

    def get_account(self, account_id: AccountId, ledger: str) -> Account | None:
        row = self.connection.execute(
            select(accounts).where(accounts.c.id == account_id, accounts.c.ledger == ledger)
        ).one_or_none()
        return None if row is None else account_from_row(row)

    def list_accounts(
        self, ledger: str, cursor: str | None, limit: int
    ) -> tuple[list[Account], str | None]:
        """A page of `ledger`'s accounts in creation order, read along the primary key: no
        index may lead with `ledger` (`tables.accounts` says why)."""
        rows = self.connection.execute(
            select(accounts)
            .where(accounts.c.ledger == ledger, accounts.c.position > decode_cursor(cursor))
            .order_by(accounts.c.position)
            .limit(limit + 1)
        ).all()
        page = rows[:limit]
        next_cursor = encode_cursor(page[-1].position) if len(rows) > limit else None
        return [account_from_row(row) for row in page], next_cursor

    def set_account_status(
        self, account_id: AccountId, status: AccountStatus, ledger: str
    ) -> Account | None:
        row = self.connection.execute(
            update(accounts)
            .where(accounts.c.id == account_id, accounts.c.ledger == ledger)
            .values(status=status.value)
            .returning(*accounts.c)
        ).one_or_none()
        return None if row is None else account_from_row(row)
