"""Verification codes: what a facsimile prints (and its QR code carries) so that anyone holding the paper can check
the certificate or permit on the hub's public verification page, and nobody can find one they do not hold.

A code is an HMAC-SHA256, under the hub's verification secret, of the document's issuing authority and number,
written as 12 characters of Crockford base32 in three groups (``K7QM-2XPA-9D4R``: 60 bits). It is the same for every
version and status of a number (a replaced certificate's paper still leads to its current status), cannot be
derived without the secret, and is compared in constant time. The secret is 32 random bytes in a file (by default
``verification.key`` in the certs directory), made on first use, readable by its owner only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from urllib.parse import urlencode

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: no I, L, O, U
CODE_LENGTH = 12
SECRET_FILE = "verification.key"


def load_secret(path: Path | str) -> bytes:
    """The verification secret kept in ``path``, made (32 random bytes, mode 0600) when there is none yet."""
    path = Path(path)
    if not path.exists():
        # Written whole under another name, then linked in place: two processes making it at once agree on one
        # secret, and nobody ever reads a half-written file.
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(secrets.token_bytes(32))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another process made it first: its secret is the secret
        finally:
            draft.unlink()
    secret = path.read_bytes()
    if len(secret) < 16:
        raise ValueError(f"the verification secret {path} is shorter than 16 bytes")
    return secret


def verification_code(secret: bytes, *, issuing_country: str, number: str) -> str:
    """The code of document ``number`` issued by ``issuing_country`` (``K7QM-2XPA-9D4R``)."""
    digest = hmac.new(secret, f"{issuing_country.upper()}\x1f{number}".encode(), hashlib.sha256).digest()
    value = int.from_bytes(digest[:8], "big") >> (64 - 5 * CODE_LENGTH)
    chars = "".join(_ALPHABET[(value >> (5 * (CODE_LENGTH - 1 - i))) & 31] for i in range(CODE_LENGTH))
    return "-".join(chars[i:i + 4] for i in range(0, CODE_LENGTH, 4))


def normalized(code: str) -> str:
    """A code as typed (any case, spaces, hyphens; O for 0, I and L for 1) in its written form."""
    plain = code.upper().replace("-", "").replace(" ", "").translate(str.maketrans("OIL", "011"))
    return "-".join(plain[i:i + 4] for i in range(0, len(plain), 4))


def code_matches(secret: bytes, code: str, *, issuing_country: str, number: str) -> bool:
    """Whether ``code`` (as typed) is the code of that document, compared in constant time."""
    expected = verification_code(secret, issuing_country=issuing_country, number=number)
    return hmac.compare_digest(normalized(code).encode(), expected.encode())


def verification_url(public_url: str, *, number: str, code: str) -> str:
    """The public verification page of a document, as its facsimile's QR code carries it."""
    return f"{public_url.rstrip('/')}/verify?{urlencode({'number': number, 'code': code})}"
