"""The services' shared dependencies, built once per process from settings (no import-time singletons)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from letterhead.db import Database
from letterhead.plans import Plans
from letterhead.security import Signer, Vault
from letterhead.settings import Settings, load_settings


@dataclass
class Context:
    settings: Settings
    db: Database
    plans: Plans
    vault: Vault
    signer: Signer
    #: Set by ``serve`` when the development inbox runs in this process.
    dev_inbox_port: int | None = field(default=None)
    #: Wakes an in-process worker when a message is queued (``serve``); None elsewhere (workers poll).
    notify: Callable[[], None] | None = field(default=None)

    @classmethod
    def create(cls, settings: Settings | None = None) -> Context:
        settings = settings or load_settings()
        return cls(
            settings=settings,
            db=Database(settings),
            plans=Plans(settings.plans),
            vault=Vault.from_settings(settings),
            signer=Signer(settings.secret_bytes()),
        )

    def close(self) -> None:
        self.db.dispose()
