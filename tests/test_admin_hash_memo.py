"""The admin password's PBKDF2 hash is computed once per password, not on every preview.

600,000 rounds cost ~0.6 s, more than the rest of the program. The program keeps the
last hash as a secret stack output with a keyed digest and reuses it when the digest,
the rounds and the salt match (components/render.py). These tests pin that the memo is
used, that every kind of mismatch hashes again, that the hash stays full strength, and
that the program wires it through its own stack outputs as a secret.
"""

import base64
import hashlib
import runpy

import pulumi
import pytest
from passlib.hash import pbkdf2_sha512
from pulumi.runtime.config import set_all_config

from components import render
from components.settings import ROOT
from tests.aws_mocks import FakeAws, RecordingMonitor
from tests.test_program_mocks import PASSWORD, PRIVATE_KEY, as_config, read_stack_file

STACK = "small"


def _no_pbkdf2(monkeypatch):
    def refuse(*a, **kw):
        raise AssertionError("PBKDF2 ran although the memo matched")
    monkeypatch.setattr(hashlib, "pbkdf2_hmac", refuse)


def test_memo_hit_reuses_the_hash_without_hashing(monkeypatch):
    hashed, memo = render.admin_passwd_hash_memo(PASSWORD, STACK)
    assert pbkdf2_sha512.verify(PASSWORD, hashed) and f"${render.PBKDF2_ROUNDS}$" in hashed
    _no_pbkdf2(monkeypatch)
    again, memo2 = render.admin_passwd_hash_memo(PASSWORD, STACK, memo)
    assert again == hashed and memo2 == memo


@pytest.mark.parametrize("change", ["password", "stack", "check", "rounds", "hash", "garbage"])
def test_any_mismatch_hashes_again(change):
    """A new password, another salt, a forged digest or other rounds never reuse the memo."""
    hashed, memo = render.admin_passwd_hash_memo(PASSWORD, STACK)
    password, stack = PASSWORD, STACK
    if change == "password":
        password = PASSWORD + "!"
    elif change == "stack":
        stack = "large"
    elif change == "check":
        memo = {**memo, "check": "0" * 64}
    elif change == "rounds":
        memo = {**memo, "hash": hashed.replace(f"${render.PBKDF2_ROUNDS}$", "$1000$")}
    elif change == "hash":  # a hash of another password with a matching-looking digest
        other = render.admin_passwd_hash("someone-else", STACK)
        memo = {"hash": other, "check": memo["check"]}
    else:
        memo = "not a memo"
    result, new_memo = render.admin_passwd_hash_memo(password, stack, memo)
    assert pbkdf2_sha512.verify(password, result)
    assert result == render.admin_passwd_hash(password, stack)
    assert new_memo["hash"] == result


def test_memo_digest_is_keyed_by_the_password():
    """The digest cannot be recomputed without the password (it is an HMAC keyed by it)."""
    hashed, memo = render.admin_passwd_hash_memo(PASSWORD, STACK)
    assert memo["check"] != hashlib.sha256(hashed.encode()).hexdigest()
    assert not render.admin_passwd_memo_matches("wrong", STACK, memo)
    salt = hashed.split("$")[3]
    assert base64.b64decode(salt.replace(".", "+") + "==")  # passlib's ab64 salt, unchanged


class _Remembering(FakeAws):
    """The fake engine with a previous deployment: the stack's own outputs hold `memo`."""

    def __init__(self, memo):
        super().__init__()
        self.memo = memo

    def new_resource(self, args):
        rid, state = super().new_resource(args)
        if args.typ == "pulumi:pulumi:StackReference":
            state = {"name": args.inputs.get("name"), "outputs": {render.ADMIN_PASSWD_MEMO_OUTPUT: self.memo},
                     "secretOutputNames": [render.ADMIN_PASSWD_MEMO_OUTPUT]}
        return rid, state


def _run(monkeypatch, mocks):
    raw = read_stack_file(STACK)
    config = {f"odoo-pulumi:{k}": as_config(v) for k, v in raw.items() if not isinstance(v, dict)}
    config["odoo-pulumi:adminPassword"] = PASSWORD
    config["odoo-pulumi:sshPrivateKey"] = PRIVATE_KEY
    exports = {}
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(pulumi, "export", lambda name, value: exports.__setitem__(name, value))
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="odoo-pulumi", stack=STACK, preview=False, monitor=monitor)
    set_all_config(config, ["odoo-pulumi:adminPassword", "odoo-pulumi:sshPrivateKey"])
    seen = {}

    @pulumi.runtime.test
    def program():
        runpy.run_path(str(ROOT / "__main__.py"))
        memo = exports[render.ADMIN_PASSWD_MEMO_OUTPUT]

        async def secret():
            seen["memo_is_secret"] = await memo.is_secret()
        return pulumi.Output.all(memo, pulumi.Output.from_input(secret())).apply(
            lambda a: seen.update(memo=a[0]))

    try:
        program()
    finally:
        set_all_config({}, [])
    conf = next(i["stdin"] for n, i in mocks.inputs.items() if n.endswith("odoo-config"))
    return seen, conf


def test_program_reuses_its_last_hash(monkeypatch):
    """First run: hash computed, kept as a secret output. Second run, with that output in the
    stack: no PBKDF2 at all, and the same odoo-config script (nothing to update)."""
    first, conf1 = _run(monkeypatch, FakeAws())
    assert first["memo_is_secret"] is True
    assert pbkdf2_sha512.verify(PASSWORD, first["memo"]["hash"])
    _no_pbkdf2(monkeypatch)
    second, conf2 = _run(monkeypatch, _Remembering(first["memo"]))
    assert second["memo"] == first["memo"] and conf2 == conf1
