"""WeCom callback crypto (doc 90968): signature, AES-256-CBC with 32-byte PKCS#7, receive id.

The cipher itself is wechatpy's; this module adds what the service needs around it: a
constant-time signature check, a timestamp window, and typed errors that map to HTTP answers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import string
import time

from wechatpy.work.crypto import PrpCrypto
from wechatpy.work.exceptions import InvalidCorpIdException


class CallbackRejected(Exception):
    """A callback that must be refused; `status` is the HTTP answer."""

    status = 400
    code = "bad_request"


class BadSignature(CallbackRejected):
    status = 403
    code = "bad_signature"


class WrongReceiver(CallbackRejected):
    status = 403
    code = "wrong_receive_id"


class StaleTimestamp(CallbackRejected):
    code = "stale_timestamp"


class UndecryptablePayload(CallbackRejected):
    code = "undecryptable"


class BadQueryParameter(CallbackRejected):
    code = "bad_query_parameter"


# Generous bounds on what WeCom sends (a 10-digit timestamp, a short nonce, a 40-hex signature):
# anything past them is refused as a 400 naming the parameter before it reaches int() or sha1.
MAX_TIMESTAMP_DIGITS = 19
MAX_NONCE_CHARS = 128
_SIGNATURE = re.compile(r"[0-9a-fA-F]{40}")


def _encodable(text: str) -> bool:
    """False for lone surrogates, which a percent-encoded query can decode to and .encode() refuses."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def sign(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode()).hexdigest()


class CallbackCrypto:
    """Verifies, decrypts and (for the emulator and tests) encrypts WeCom callback payloads."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str, max_skew_seconds: int = 600):
        self.token = token
        self.receive_id = receive_id
        self.max_skew_seconds = max_skew_seconds
        self._key = base64.b64decode(encoding_aes_key + "=")
        if len(self._key) != 32:
            raise ValueError("EncodingAESKey must decode to 32 bytes")

    def check_timestamp(self, timestamp: str, now: float | None = None) -> None:
        # str.isdigit() takes `²` and `①`, which int() refuses; and int() refuses over 4,300 digits.
        if not (0 < len(timestamp) <= MAX_TIMESTAMP_DIGITS and timestamp.isascii() and timestamp.isdigit()):
            raise BadQueryParameter(f"timestamp must be 1 to {MAX_TIMESTAMP_DIGITS} ASCII digits")
        if self.max_skew_seconds and abs((now or time.time()) - int(timestamp)) > self.max_skew_seconds:
            raise StaleTimestamp(f"timestamp outside the {self.max_skew_seconds}s window")

    def check_nonce(self, nonce: str) -> None:
        if not 0 < len(nonce) <= MAX_NONCE_CHARS or not nonce.isprintable() or not _encodable(nonce):
            raise BadQueryParameter(f"nonce must be 1 to {MAX_NONCE_CHARS} printable characters")

    def verify_signature(self, signature: str, timestamp: str, nonce: str, encrypted: str) -> None:
        if not _SIGNATURE.fullmatch(signature):
            raise BadSignature("msg_signature is not 40 hexadecimal digits")
        if not _encodable(encrypted):
            raise UndecryptablePayload("the encrypted value is not valid text")
        expected = sign(self.token, timestamp, nonce, encrypted)
        if not hmac.compare_digest(expected.encode(), (signature or "").encode()):
            raise BadSignature("msg_signature does not match")

    def decrypt(self, encrypted: str) -> str:
        # A fresh PrpCrypto per call: the cryptography Cipher context is not shared across tasks.
        try:
            return PrpCrypto(self._key).decrypt(encrypted, self.receive_id)
        except InvalidCorpIdException:
            raise WrongReceiver("receive id is not this corp") from None
        except Exception as exc:  # garbage base64, bad padding, bad length, non-UTF-8
            raise UndecryptablePayload(f"cannot decrypt: {type(exc).__name__}") from None

    def open(self, signature: str, timestamp: str, nonce: str, encrypted: str) -> str:
        """Check the window and signature, then decrypt."""
        self.check_timestamp(timestamp)
        self.check_nonce(nonce)
        self.verify_signature(signature, timestamp, nonce, encrypted)
        return self.decrypt(encrypted)

    def encrypt(self, plaintext: str) -> str:
        return PrpCrypto(self._key).encrypt(plaintext, self.receive_id).decode()

    def seal(self, plaintext_xml: str, timestamp: str | None = None, nonce: str | None = None) -> dict:
        """Encrypt and sign a message as WeCom sends it: query params plus the POST body."""
        timestamp = timestamp or str(int(time.time()))
        nonce = nonce or "".join(secrets.choice(string.digits) for _ in range(10))
        encrypted = self.encrypt(plaintext_xml)
        body = (
            f"<xml><ToUserName><![CDATA[{self.receive_id}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
        )
        return {
            "params": {
                "msg_signature": sign(self.token, timestamp, nonce, encrypted),
                "timestamp": timestamp,
                "nonce": nonce,
            },
            "body": body,
            "encrypted": encrypted,
        }
