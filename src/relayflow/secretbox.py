"""Secrets at rest and signed URLs, keyed by RELAYFLOW_SECRET_KEY.

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) encrypts 8x8 API keys in the database;
the Fernet key is derived with HKDF so any sufficiently long passphrase works as the setting.
Signatures authenticate the DTMF callback URLs relayflow hands to 8x8.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MIN_SECRET_LENGTH = 16


class SecretKeyError(ValueError):
    """The secret key is missing, too short, or not the one the data was encrypted with."""


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"relayflow", info=purpose).derive(
        secret.encode()
    )


class SecretBox:
    def __init__(self, secret: str) -> None:
        if len(secret) < MIN_SECRET_LENGTH:
            raise SecretKeyError(
                f"RELAYFLOW_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters long."
            )
        self._fernet = Fernet(
            base64.urlsafe_b64encode(_derive(secret, b"encrypt provider secrets"))
        )
        self._signing_key = _derive(secret, b"sign callback urls")

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretKeyError(
                "Cannot decrypt a stored provider secret: RELAYFLOW_SECRET_KEY is not the key it "
                "was stored with."
            ) from None

    def sign(self, message: str) -> str:
        return hmac.new(self._signing_key, message.encode(), hashlib.sha256).hexdigest()

    def verify(self, message: str, signature: str) -> bool:
        return hmac.compare_digest(self.sign(message), signature)
