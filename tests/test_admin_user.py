"""The administrator user's settings, hash and step, without a server.

adminUserPassword is a required secret that reaches the server only as a pbkdf2_sha512
hash Odoo 19's CryptContext verifies without rehashing; adminLogin is validated; the
odoo-config step sets both and the health step ships and runs odoo-acceptance.
"""

import base64
import re

import pytest
from passlib.context import CryptContext

from odoo_pulumi import acceptance, backup, steps
from odoo_pulumi.render import admin_passwd_hash, admin_user_hash, server_files
from odoo_pulumi.settings import SettingsError, load_settings, sizing_for
from tests.conftest import host_settings

# Odoo 19's res_users._crypt_context() (odoo/addons/base/models/res_users.py), MIN_ROUNDS 600000.
ODOO_CRYPT = CryptContext(["pbkdf2_sha512", "plaintext"], deprecated=["auto"], pbkdf2_sha512__rounds=600_000)
PASSWORD = "administrator user password"


def test_admin_user_hash_is_what_odoo_verifies_and_keeps():
    h = admin_user_hash(PASSWORD, "small", key="test-key")
    assert ODOO_CRYPT.verify_and_update(PASSWORD, h) == (True, None), "Odoo would rehash it at each login"
    assert not ODOO_CRYPT.verify("admin", h)
    assert h == admin_user_hash(PASSWORD, "small", key="test-key"), "a re-run must find the same hash"
    assert h != admin_user_hash(PASSWORD, "large", key="test-key") and h != admin_passwd_hash(PASSWORD, "small", key="test-key")
    with pytest.raises(SettingsError, match="adminUserPassword is empty"):
        admin_user_hash("", "small", key="test-key")


def test_admin_user_password_is_a_required_secret():
    raw = {"users": 15, "target": "host", "host": "10.0.0.5"}
    with pytest.raises(SettingsError, match="adminUserPassword is required and must be a secret"):
        load_settings(raw, "t", {"adminPassword", "sshPrivateKey"})
    with pytest.raises(SettingsError, match="adminUserPassword must be stored as a secret"):
        load_settings({**raw, "adminUserPassword": "hunter2"}, "t",
                      {"adminPassword", "adminUserPassword", "sshPrivateKey"})


@pytest.mark.parametrize("login", ["admin", "erp.admin", "it-team_1", "boss@example.com", "a.b+erp@mail.example.org"])
def test_admin_login_accepts_logins_and_emails(login):
    assert host_settings(adminLogin=login).admin_login == login


@pytest.mark.parametrize("login", ["", "ad min", "x'; DROP TABLE res_users; --", "-admin", "a" * 65, "me@localhost"])
def test_admin_login_refuses_anything_else(login):
    with pytest.raises(SettingsError) as e:
        host_settings(adminLogin=login)
    if login.strip():
        shown = repr(login.strip()) if len(login) <= 60 else repr(login.strip()[:58])[:-1] + "… (65 characters)"
        assert f"setting adminLogin={shown} is invalid: expected an e-mail address" in str(e.value)


def _scripts(s, user_hash=None):
    files = {**server_files(s, sizing_for(s), admin_passwd_hash("master", s.stack, key="test-key")), **backup.server_files(s)}
    return steps.render_scripts(s, files, host="10.0.0.5",
                                admin_user_hash=user_hash or admin_user_hash(PASSWORD, s.stack, key="test-key"))


def test_odoo_config_sets_login_and_hash_never_the_password():
    s = host_settings(adminLogin="boss@example.com")
    scripts = _scripts(s)
    config = scripts["odoo-config"]
    assert admin_user_hash(PASSWORD, s.stack, key="test-key") in config and "admin_login=boss@example.com" in config
    for name, text in scripts.items():
        assert PASSWORD not in text, name
    assert "base" in config and "user_admin" in config
    # the hash goes to psql on stdin (\set), never as a -v argument
    assert not re.search(r"psql[^\n]*-v\s+hash", config)
    assert steps.step_embeds_secret(next(st for st in steps.plan(s) if st.name == "odoo-config"))


def test_a_clear_password_is_refused_as_the_hash():
    with pytest.raises(ValueError, match="must be a pbkdf2_sha512 hash"):
        _scripts(host_settings(), user_hash="admin")


def test_new_secret_or_login_changes_only_odoo_config_and_health():
    s = host_settings()
    a = _scripts(s)
    b = _scripts(s, admin_user_hash("another password", s.stack, key="test-key"))
    c = _scripts(host_settings(adminLogin="boss@example.com"))
    assert {k for k in a if a[k] != b[k]} == {"odoo-config", "health"}
    assert {k for k in a if a[k] != c[k]} == {"odoo-config", "health"}


def test_health_ships_and_runs_the_acceptance_check():
    s = host_settings(database="erp", adminLogin="boss@example.com")
    health = _scripts(s)["health"]
    shipped = base64.b64encode(open(acceptance.__file__, "rb").read()).decode()
    assert shipped in health and steps.ACCEPTANCE_PATH in health
    run = health[health.index("--http --server"):].split("2>&1")[0]
    assert "--no-attachment" in run and "--db erp" in run and "--login boss@example.com" in run
    assert "--password" not in run
