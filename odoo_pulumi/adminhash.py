"""The administrator passwords' hashes, computed on the server, never in the program.

Odoo keeps the master password (odoo.conf's admin_passwd) and its users' passwords
(res_users.password) as passlib `pbkdf2_sha512` strings,
`$pbkdf2-sha512$600000$<salt>$<checksum>` in passlib's adapted base64, and verifies them
with CryptContext(['pbkdf2_sha512', 'plaintext']); 600,000 rounds is Odoo 19's
MIN_ROUNDS, so a hash with exactly those rounds is never rehashed at login.

600,000 rounds cost ~0.6 s per hash. Computed by the Pulumi program, that was paid on
every preview; so the odoo-config step runs this file (stdlib only) on the server with
the server's Python: it keeps the hash already there when the password still verifies
(a re-run writes nothing) and makes a new one, with a random salt, only when it does
not. Usage on the server: `python3 -c "$SOURCE" < input`, where input is one line
`<password, base64> <current hash or nothing>`; prints the hash to store. The password
comes on stdin only, never in a command line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import sys

ROUNDS = 600_000
SCHEME = "$pbkdf2-sha512$"


def _ab64_encode(raw: bytes) -> str:
    """passlib's adapted base64: '.' for '+', no padding."""
    return base64.b64encode(raw).decode().rstrip("=").replace("+", ".")


def _ab64_decode(text: str) -> bytes:
    text = text.replace(".", "+")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def new_hash(password: str, salt: bytes | None = None) -> str:
    """A fresh pbkdf2_sha512 hash of `password` at ROUNDS, with a random 16-byte salt."""
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ROUNDS)
    return f"{SCHEME}{ROUNDS}${_ab64_encode(salt)}${_ab64_encode(digest)}"


def verifies(password: str, stored: str) -> bool:
    """True when `stored` is a pbkdf2_sha512 hash at exactly ROUNDS of `password`.

    Another round count verifies in Odoo too, but it would be rehashed (fewer) or cost
    more than intended: it is replaced, like anything that is not such a hash.
    """
    parts = stored.split("$")
    if len(parts) != 5 or parts[1] != "pbkdf2-sha512" or parts[2] != str(ROUNDS):
        return False
    try:
        salt, checksum = _ab64_decode(parts[3]), _ab64_decode(parts[4])
    except (binascii.Error, ValueError):
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ROUNDS)
    return hmac.compare_digest(digest, checksum)


def keep_or_hash(password: str, current: str) -> str:
    """The hash to store: `current` when it verifies `password`, a new one otherwise."""
    if not password:
        raise ValueError("empty password")
    return current if current and verifies(password, current) else new_hash(password)


def main() -> int:
    line = sys.stdin.readline().strip()
    b64, _, current = line.partition(" ")
    try:
        password = base64.b64decode(b64, validate=True).decode()
        print(keep_or_hash(password, current.strip()))
    except (binascii.Error, UnicodeDecodeError, ValueError) as e:
        # Never echo the input: it holds the password.
        print(f"adminhash: unusable input ({type(e).__name__})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
