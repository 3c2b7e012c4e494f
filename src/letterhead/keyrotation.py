"""Re-encrypting every stored secret under the newest encryption key (``letterhead keys rotate``).

What is encrypted is listed once, in ``models.ENCRYPTED_COLUMNS``. Rows are re-encrypted in batches, each batch
its own short transaction with its rows locked (SQLite's writer lock, ``FOR UPDATE`` on PostgreSQL), so the API
and the workers keep running and a row saved meanwhile is never overwritten with an older value. An interrupted
rotation is simply run again: a value already under the newest key is re-encrypted once more, nothing else.

Afterwards every value is checked against the newest key alone: a process still running with the old key list
(not restarted after the new key was prepended) writes under the old key, and removing that key would make
what it wrote unreadable. The report says so instead of declaring the old key removable.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, bindparam, or_, select, update
from sqlalchemy.orm import Session

from letterhead.context import Context
from letterhead.errors import ConfigurationError
from letterhead.models import ENCRYPTED_COLUMNS, EncryptedColumns
from letterhead.security import Vault

BATCH_SIZE = 500


@dataclass
class RotationReport:
    #: Per kind ("smtp passwords", …): rows re-encrypted under the newest key.
    rotated: dict[str, int] = field(default_factory=dict)
    #: Per kind: values no configured key decrypts (a key removed too early); left as they are.
    unreadable: dict[str, int] = field(default_factory=dict)
    #: Per kind: values the newest key alone cannot decrypt after the pass (``unreadable`` included).
    not_newest: dict[str, int] = field(default_factory=dict)

    @property
    def old_keys_removable(self) -> bool:
        return not any(self.not_newest.values())


def _columns(entry: EncryptedColumns) -> tuple[Column[Any], list[Column[Any]]]:
    """(primary key, encrypted columns) of ``entry``'s table."""
    table = entry.table
    [pk] = table.primary_key.columns
    return pk, [table.c[attr.key] for attr in entry.columns]


def _batches(ctx: Context, entry: EncryptedColumns, *, lock: bool) -> Iterator[tuple[Session, list[Any]]]:
    """(session, rows) per batch of ``entry``'s rows with a value, in primary-key order; with ``lock`` the rows
    are locked and the batch's writes committed when the caller asks for the next."""
    pk, cols = _columns(entry)
    after: Any = None
    while True:
        with ctx.db.session() if lock else ctx.db.reading() as s:
            q = select(pk, *cols).where(or_(*(c.is_not(None) for c in cols))).order_by(pk).limit(BATCH_SIZE)
            if entry.where is not None:
                q = q.where(entry.where)
            if after is not None:
                q = q.where(pk > after)
            if lock:
                q = q.with_for_update()
            rows = list(s.execute(q))
            if not rows:
                return
            yield s, rows
            after = rows[-1][0]


def _rotate_entry(ctx: Context, entry: EncryptedColumns) -> tuple[int, int]:
    """(rows re-encrypted, values unreadable) for one registry entry."""
    pk, cols = _columns(entry)
    stmt = update(entry.table).where(pk == bindparam("_pk")).values({c.name: bindparam(f"_{c.name}") for c in cols})
    rotated = unreadable = 0
    for s, rows in _batches(ctx, entry, lock=True):
        params = []
        for row in rows:
            values: dict[str, Any] = {"_pk": row[0]}
            ok = True
            for col, value in zip(cols, row[1:], strict=True):
                try:
                    values[f"_{col.name}"] = ctx.vault.rotate(value) if value is not None else None
                except ConfigurationError:
                    unreadable += 1
                    ok = False
            if ok:
                params.append(values)
        if params:
            s.connection().execute(stmt, params)
            rotated += len(params)
    return rotated, unreadable


def _count_not_newest(ctx: Context, entry: EncryptedColumns, newest: Vault) -> int:
    count = 0
    for _, rows in _batches(ctx, entry, lock=False):
        for row in rows:
            for value in row[1:]:
                if value is None:
                    continue
                try:
                    newest.decrypt(value)
                except ConfigurationError:
                    count += 1
    return count


def rotate(ctx: Context) -> RotationReport:
    """Re-encrypt every value of ``ENCRYPTED_COLUMNS`` under the first configured key, then check them."""
    report = RotationReport()
    newest = ctx.vault.newest_only()
    for entry in ENCRYPTED_COLUMNS:
        rotated, unreadable = _rotate_entry(ctx, entry)
        report.rotated[entry.kind] = report.rotated.get(entry.kind, 0) + rotated
        report.unreadable[entry.kind] = report.unreadable.get(entry.kind, 0) + unreadable
    for entry in ENCRYPTED_COLUMNS:
        report.not_newest[entry.kind] = report.not_newest.get(entry.kind, 0) + _count_not_newest(ctx, entry, newest)
    return report
