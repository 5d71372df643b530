"""The administrator passwords' hashes: made on the server, never by the program (issue 13).

odoo_pulumi/adminhash.py runs on the server (odoo-config, with the server's Python) and
must produce what Odoo 19 verifies: passlib's pbkdf2_sha512 at 600,000 rounds, checked
here with passlib itself configured as Odoo configures it. The program's preview must
never compute a PBKDF2 (each costs ~0.6 s): checked by running the whole program under
mocks with hashlib's PBKDF2 replaced by a trap.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys

import _hashlib
import pytest
from passlib.context import CryptContext
from passlib.hash import pbkdf2_sha512

from odoo_pulumi import adminhash, steps

# Odoo 19's res_users._crypt_context() (odoo/addons/base/models/res_users.py, MIN_ROUNDS)
# and odoo/tools/config.py's context for admin_passwd.
ODOO_USERS = CryptContext(["pbkdf2_sha512", "plaintext"], deprecated=["auto"], pbkdf2_sha512__rounds=600_000)
ODOO_CONFIG = CryptContext(["pbkdf2_sha512", "plaintext"], deprecated=["plaintext"], pbkdf2_sha512__rounds=600_000)
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def stored():
    return adminhash.keep_or_hash(PASSWORD, "")


def test_the_hash_is_what_odoo_verifies_and_never_rehashes(stored):
    assert stored.startswith("$pbkdf2-sha512$600000$") and PASSWORD not in stored
    assert ODOO_USERS.verify_and_update(PASSWORD, stored) == (True, None), "Odoo would rehash it at each login"
    assert ODOO_CONFIG.verify_and_update(PASSWORD, stored) == (True, None)
    assert not ODOO_USERS.verify("admin", stored)


def test_a_verifying_hash_is_kept_anything_else_replaced(stored):
    """A re-run writes nothing: the hash already stored is kept while the password verifies
    it (passlib's own hashes too); a new password, another round count or a plain text
    gets a fresh hash with a random salt."""
    assert adminhash.keep_or_hash(PASSWORD, stored) == stored
    passlib_made = pbkdf2_sha512.using(rounds=600_000).hash(PASSWORD)
    assert adminhash.keep_or_hash(PASSWORD, passlib_made) == passlib_made
    new = adminhash.keep_or_hash("another password", stored)
    assert new != stored and ODOO_USERS.verify("another password", new) and not ODOO_USERS.verify(PASSWORD, new)
    for current in (pbkdf2_sha512.using(rounds=29_000).hash(PASSWORD), PASSWORD, "$pbkdf2-sha512$600000$!!$!!", ""):
        replaced = adminhash.keep_or_hash(PASSWORD, current)
        assert replaced != current and ODOO_USERS.verify_and_update(PASSWORD, replaced) == (True, None)
    salts = {adminhash.new_hash(PASSWORD).split("$")[3] for _ in range(2)}
    assert len(salts) == 2, "the salt must be random"


def test_run_as_on_the_server(stored):
    """`python3 -c SOURCE` with `<password base64> <current>` on stdin, as odoo-config runs
    it: prints the hash, and never the input when the input is bad."""
    source = steps.ADMINHASH_SOURCE.read_text()
    b64 = base64.b64encode(PASSWORD.encode()).decode()

    def run(line):
        return subprocess.run([sys.executable, "-c", source], input=line, capture_output=True, text=True,
                              timeout=60)

    kept = run(f"{b64} {stored}\n")
    assert (kept.returncode, kept.stdout) == (0, stored + "\n")
    fresh = run(f"{b64} \n")
    assert fresh.returncode == 0 and ODOO_USERS.verify(PASSWORD, fresh.stdout.strip())
    bad = run(f"not-base64!{PASSWORD} x\n")
    assert bad.returncode == 2 and PASSWORD not in bad.stdout + bad.stderr


def test_the_preview_never_computes_a_pbkdf2(monkeypatch, tmp_path):
    """The whole program, for a host and an aws stack, with hashlib's PBKDF2 made a trap:
    600,000 rounds on every preview is what issue 13 removed from the program."""
    from tests.test_program_mocks import run_program

    calls = []

    def trap(*args, **kwargs):
        calls.append(args[:1])
        raise AssertionError("PBKDF2 computed by the program")

    monkeypatch.setattr(hashlib, "pbkdf2_hmac", trap)
    monkeypatch.setattr(_hashlib, "pbkdf2_hmac", trap)
    for stack in ("local", "small"):
        exports, resources = run_program(stack, monkeypatch, tmp_path=tmp_path)
        config = next(r for n, r in resources.items() if n.endswith("-odoo-config"))
        assert "admin_hash" in str(config["inputs"]["stdin"]), f"{stack}: the scripts were not rendered"
    assert calls == []
