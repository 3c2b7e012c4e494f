"""Secrets: API keys, passwords, encryption of stored secrets, signed tokens.

- API keys are ``lh_<prefix>_<secret>``: the prefix finds the row, the sha256 of the whole key is compared in
  constant time. Shown once, stored hashed.
- Stored secrets (SMTP passwords, DKIM keys, bodies with bearer links: ``models.ENCRYPTED_COLUMNS``) are encrypted
  with ``MultiFernet``: the first key encrypts, every key decrypts, so keys rotate by prepending a new one
  (``letterhead keys rotate`` re-encrypts, see ``letterhead.keyrotation``).
- Passwords of users are argon2id hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from letterhead.errors import ConfigurationError
from letterhead.settings import Settings


@dataclass(frozen=True)
class NewApiKey:
    key: str
    prefix: str
    key_hash: str


def generate_api_key() -> NewApiKey:
    prefix = secrets.token_hex(6)
    key = f"lh_{prefix}_{secrets.token_urlsafe(32)}"
    return NewApiKey(key=key, prefix=prefix, key_hash=sha256_hex(key))


def split_api_key(key: str) -> str | None:
    """The prefix of a well-formed key, else None."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != "lh" or len(parts[1]) != 12:
        return None
    return parts[1]


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def hashes_match(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def new_token() -> str:
    """A URL-safe random token with 256 bits of randomness."""
    return secrets.token_urlsafe(32)


_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class Vault:
    """Encrypts and decrypts stored secrets with the configured (rotatable) keys."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ConfigurationError("LETTERHEAD_ENCRYPTION_KEYS is empty.")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
            self._keys = list(keys)
        except ValueError as exc:
            raise ConfigurationError(
                "LETTERHEAD_ENCRYPTION_KEYS must be comma-separated 32-byte url-safe base64 keys."
            ) from exc

    @classmethod
    def from_settings(cls, settings: Settings) -> Vault:
        return cls(settings.fernet_keys())

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ConfigurationError(
                "A stored secret cannot be decrypted with the configured keys (was a key removed?)."
            ) from exc

    def rotate(self, token: str) -> str:
        """Re-encrypt under the first (newest) key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise ConfigurationError("A stored secret cannot be decrypted with the configured keys.") from exc

    def newest_only(self) -> Vault:
        """A vault with only the first key: what is left once the older keys are removed."""
        return Vault(self._keys[:1])


class Signer:
    """Signed, expiring tokens (test proofs, CSRF, sessions) under one secret, separated by purpose."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._secret, salt=f"letterhead.{purpose}")

    def sign(self, purpose: str, payload: object) -> str:
        return self._serializer(purpose).dumps(payload)

    def unsign(self, purpose: str, token: str, *, max_age: int) -> object | None:
        """The payload, or None when the token is forged, garbled or older than ``max_age`` seconds."""
        try:
            payload: object = self._serializer(purpose).loads(token, max_age=max_age)
            return payload
        except (BadSignature, SignatureExpired):
            return None
