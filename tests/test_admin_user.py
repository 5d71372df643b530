"""The administrator user's settings and step, without a server.

adminUserPassword is a required secret that rides only in the (secret) odoo-config
script, base64-encoded, and is stored as the pbkdf2_sha512 hash the server computes
(tests/test_adminhash.py: the hash Odoo 19's CryptContext verifies without rehashing);
adminLogin is validated; the odoo-config step sets both and the health step ships and
runs odoo-acceptance.
"""

import base64
import re

import pytest

from odoo_pulumi import acceptance, backup, steps
from odoo_pulumi.render import server_files
from odoo_pulumi.settings import SettingsError, load_settings, sizing_for
from tests.conftest import host_settings

PASSWORD = "administrator user password"
MASTER = "the master password"


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


def _scripts(s, user_password=PASSWORD, master=MASTER):
    files = {**server_files(s, sizing_for(s)), **backup.server_files(s)}
    return steps.render_scripts(s, files, host="10.0.0.5", admin_password=master, admin_user_password=user_password)


def test_odoo_config_carries_the_password_encoded_and_hashes_it_on_the_server():
    s = host_settings(adminLogin="boss@example.com")
    scripts = _scripts(s)
    config = scripts["odoo-config"]
    encoded = base64.b64encode(PASSWORD.encode()).decode()
    assert f"admin_user_pw_b64={encoded}" in config and "admin_login=boss@example.com" in config
    for name, text in scripts.items():
        assert PASSWORD not in text, name
        assert encoded not in text or name == "odoo-config", name
    assert "base" in config and "user_admin" in config
    # the server's Python hashes it (the source of odoo_pulumi/adminhash.py, shipped in the
    # script), the password on its stdin; the hash goes to psql on stdin (\set), never as
    # a -v argument
    assert base64.b64encode(steps.ADMINHASH_SOURCE.read_bytes()).decode() in config
    assert 'user_hash=$(admin_hash "$admin_user_pw_b64" "$current_hash")' in config
    assert not re.search(r"psql[^\n]*-v\s+hash", config)
    assert steps.step_embeds_secret(next(st for st in steps.plan(s) if st.name == "odoo-config"))


@pytest.mark.parametrize("which", ["adminPassword", "adminUserPassword"])
def test_an_empty_password_is_refused_by_name(which):
    with pytest.raises(SettingsError, match=f"setting {which} is empty"):
        _scripts(host_settings(), **({"master": ""} if which == "adminPassword" else {"user_password": ""}))


def test_new_secret_or_login_changes_only_odoo_config_and_health():
    s = host_settings()
    a = _scripts(s)
    b = _scripts(s, "another password")
    c = _scripts(host_settings(adminLogin="boss@example.com"))
    assert {k for k in a if a[k] != b[k]} == {"odoo-config", "health"}
    assert {k for k in a if a[k] != c[k]} == {"odoo-config", "health"}


def test_health_ships_and_runs_the_acceptance_check():
    s = host_settings(database="erp", adminLogin="boss@example.com")
    health = _scripts(s)["health"]
    # shipped as an upload (issue 13): the script names it by path and SHA-256, never its bytes
    program = steps.acceptance_file()
    assert program.source == acceptance.__file__ and program.content == open(acceptance.__file__, "rb").read().decode()
    assert f"put_staged {steps.ACCEPTANCE_PATH} root root 0755 {program.staged} {program.sha256}\n" in health
    run = health[health.index("--http --server"):].split("2>&1")[0]
    assert "--no-attachment" in run and "--db erp" in run and "--login boss@example.com" in run
    assert "--password" not in run
