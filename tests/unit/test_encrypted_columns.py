"""``models.ENCRYPTED_COLUMNS`` lists every column that holds Vault ciphertext: ``letterhead keys rotate``
re-encrypts exactly those, so a column missing from it would be unreadable once the old key is removed."""

from __future__ import annotations

import re
from pathlib import Path

from letterhead.models import ENCRYPTED_COLUMNS, Base

SRC = Path(__file__).resolve().parents[2] / "src" / "letterhead"

#: Every place that encrypts with the vault, and where the ciphertext goes. A new one must store into a column
#: of ENCRYPTED_COLUMNS, or be ephemeral (never stored) and say so here.
ENCRYPTING = {
    "senders/smtp.py": "smtp_configs.password_enc",
    "senders/domains.py": "sending_domains.private_key_enc",
    "bench.py": "sending_domains.private_key_enc",  # the benchmark's own sending domains
    "delivery/content.py": "messages.html, messages.text (sealed bodies)",
    # The password a user just tested, sealed into the SMTP form for the save that follows: it expires after
    # minutes and lives only in the browser's form, never in the database (a rotation just makes it re-typed).
    "web/app.py": "ephemeral form field",
}


def registered() -> set[str]:
    return {f"{e.table.name}.{attr.key}" for e in ENCRYPTED_COLUMNS for attr in e.columns}


def test_every_enc_column_is_registered() -> None:
    enc = {f"{t.name}.{c.name}" for t in Base.metadata.tables.values() for c in t.columns if c.name.endswith("_enc")}
    assert enc, "the naming convention changed: update this test"
    assert enc <= registered(), f"encrypted columns missing from models.ENCRYPTED_COLUMNS: {enc - registered()}"


def test_every_place_that_encrypts_is_accounted_for() -> None:
    found = set()
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        if re.search(r"vault\.encrypt\(|_fernet\.encrypt\(", text) and path.name != "security.py":
            found.add(path.relative_to(SRC).as_posix())
    assert found == set(ENCRYPTING), (
        f"vault.encrypt is called in {sorted(found - set(ENCRYPTING))}: register its column in "
        "models.ENCRYPTED_COLUMNS (or list it here when the ciphertext is never stored)"
    )
    for target in ENCRYPTING.values():
        for column in re.findall(r"\b\w+\.\w+_enc\b|\bmessages\.(?:html|text)\b", target):
            assert column in registered(), column


def test_kinds_are_named_for_people() -> None:
    kinds = [e.kind for e in ENCRYPTED_COLUMNS]
    assert kinds == ["smtp passwords", "dkim keys", "sealed email bodies"]
    assert len(set(kinds)) == len(kinds)
