"""The FAKE Odoo's administrator user, logins, attachments, asset bundles and cron, and
the acceptance check (odoo_pulumi/acceptance.py) run against it.

The fake must behave like Odoo 19 where the product depends on it: after `-i base` the
administrator is admin/admin until its password is set (as a pbkdf2_sha512 hash in
res_users.password, which Odoo's CryptContext verifies: checked here with passlib),
/web/session/authenticate answers like Odoo and logs a refused login like Odoo, and a
cron worker sets ir_cron.lastcall. A throwaway PostgreSQL cluster (see test_fake_odoo).
"""

import base64
import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from passlib.context import CryptContext

from odoo_pulumi import acceptance
from odoo_pulumi.adminhash import new_hash
from testbed.tests.test_fake_odoo import Running, cluster, http_get, run_fake, write_conf  # noqa: F401 (fixture)

DB = "fake_adm"
ODOO_CRYPT = CryptContext(["pbkdf2_sha512", "plaintext"], deprecated=["auto"], pbkdf2_sha512__rounds=600_000)


def authenticate(port, login, password, db=DB):
    body = json.dumps({"jsonrpc": "2.0", "method": "call", "id": 7,
                       "params": {"db": db, "login": login, "password": password}}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/web/session/authenticate", body,
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status, json.loads(resp.read())


@pytest.fixture(scope="module")
def fake(cluster, tmp_path_factory):  # noqa: F811 (the fixture imported above)
    """A threaded fake over an initialised database, cron polling every second."""
    directory = tmp_path_factory.mktemp("admin")
    conf, opts = write_conf(directory, cluster, db_name=DB, dbfilter=f"^{DB}$", list_db=False)
    init = run_fake("-c", conf, "-d", DB, "-i", "base", "--stop-after-init", timeout=120)
    assert init.returncode == 0, init.stderr
    os.environ["FAKE_ODOO_CRON_INTERVAL"] = "1"
    try:
        server = Running(conf, opts, directory / "odoo.log").wait_ready()
    finally:
        del os.environ["FAKE_ODOO_CRON_INTERVAL"]
    yield server
    server.stop()


def set_admin_password(cluster, password, stack="t"):
    """What the odoo-config step does to the database: the hash, for base.user_admin."""
    cluster.psql(f"UPDATE res_users SET password = '{new_hash(password)}' WHERE id = "
                 "(SELECT res_id FROM ir_model_data WHERE module = 'base' AND name = 'user_admin')", DB)


def acceptance_run(port, *extra, env=None):
    return subprocess.run([sys.executable, "-m", "odoo_pulumi.acceptance", "--http",
                           "--url", f"http://127.0.0.1:{port}", "--db", DB, *extra],
                          capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})


def lines_of(out):
    return {line.split(":", 1)[0]: line for line in out.splitlines() if line[:4] in ("PASS", "FAIL")}


def test_admin_is_admin_admin_after_init_like_odoo(fake, cluster):
    """`-i base` leaves admin/admin (a hash of 'admin' Odoo's CryptContext verifies)."""
    stored = cluster.psql("SELECT u.password FROM res_users u JOIN ir_model_data d ON d.res_id = u.id "
                          "AND d.model = 'res.users' WHERE d.module = 'base' AND d.name = 'user_admin'", DB)
    assert stored.startswith("$pbkdf2-sha512$600000$")
    assert ODOO_CRYPT.verify("admin", stored)
    status, answer = authenticate(fake.opts["http_port"], "admin", "admin")
    assert status == 200 and answer["result"]["uid"] == 2 and answer["result"]["is_admin"] is True


def test_password_set_as_a_hash_refuses_admin_admin(fake, cluster):
    """Once the hash is stored, admin/admin is refused like Odoo refuses it, and logged."""
    set_admin_password(cluster, "correct horse battery")
    port = fake.opts["http_port"]
    status, answer = authenticate(port, "admin", "admin")
    assert status == 200 and "result" not in answer
    assert answer["error"]["code"] == 0 and answer["error"]["message"] == "Odoo Server Error"
    assert answer["error"]["data"]["name"] == "odoo.exceptions.AccessDenied"
    status, answer = authenticate(port, "admin", "correct horse battery")
    assert answer["result"]["uid"] == 2
    log = fake.text()
    assert "Login failed for login:admin from 127.0.0.1" in log
    assert "WARNING FAKE-ODOO fake_odoo.http: Access Denied" in log
    assert "Login successful for login:admin from 127.0.0.1" in log
    # the same hash verifies with Odoo's own CryptContext and needs no rehash
    stored = cluster.psql("SELECT password FROM res_users WHERE id = 2", DB)
    assert ODOO_CRYPT.verify_and_update("correct horse battery", stored) == (True, None)


def test_plaintext_admin_password_works_like_odoo(fake, cluster):
    """Odoo's CryptContext lists 'plaintext': a password reset to 'admin' in SQL works."""
    cluster.psql("UPDATE res_users SET password = 'admin' WHERE id = 2", DB)
    try:
        assert authenticate(fake.opts["http_port"], "admin", "admin")[1]["result"]["uid"] == 2
    finally:
        set_admin_password(cluster, "correct horse battery")


def test_cron_worker_runs_due_jobs(fake, cluster):
    """The cron worker sets lastcall of due jobs (here polling every second)."""
    cluster.psql("UPDATE ir_cron SET nextcall = (now() AT TIME ZONE 'UTC') - interval '1 hour', lastcall = NULL", DB)
    deadline = time.monotonic() + 20
    while cluster.psql("SELECT count(lastcall) FROM ir_cron", DB) == "0":
        assert time.monotonic() < deadline, fake.text()[-2000:]
        time.sleep(0.5)
    assert cluster.psql("SELECT bool_and(nextcall > now() AT TIME ZONE 'UTC') FROM ir_cron", DB) == "t"


def test_login_page_loads_asset_bundles_served_from_the_filestore(fake):
    port = fake.opts["http_port"]
    status, _, page = http_get(port, "/web/login")
    form, assets = acceptance.parse_login_page(page)
    assert status == 200 and form is not None
    assert {a.rsplit(".", 1)[1] for a in assets} == {"css", "js"}
    for url in assets:
        status, headers, body = http_get(port, url)
        assert status == 200 and len(body) > 1024
        assert headers["Content-Type"] == ("text/javascript" if url.endswith(".js") else "text/css")
    data_dir = fake.opts["data_dir"]
    stored = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(data_dir, "filestore", DB)) for f in fs
              if len(f) == 40]
    assert len(stored) >= 2


def test_acceptance_against_the_fake(fake, cluster, tmp_path):
    """The HTTP checks measure the fake: what works passes, what only Nginx adds fails."""
    port = fake.opts["http_port"]
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery\n")
    run = acceptance_run(port, "--password-file", str(pw))
    got = lines_of(run.stdout)
    for name in ("health_route", "login_page", "database_manager", "default_admin", "websocket", "attachment"):
        assert got[f"PASS {name}"] if f"PASS {name}" in got else False, run.stdout
    assert "204800 B uploaded as admin (uid 2)" in got["PASS attachment"]
    # Without Nginx nothing compresses the bundles: the check says so and the run fails.
    assert "FAIL asset_bundle" in got and "not compressed" in got["FAIL asset_bundle"], run.stdout
    assert run.returncode == 1
    # the uploaded attachment is deleted again
    assert cluster.psql("SELECT count(*) FROM ir_attachment WHERE name LIKE 'odoo-acceptance-%'", DB) == "0"


def test_acceptance_fails_on_a_working_admin_admin(fake, cluster):
    cluster.psql("UPDATE res_users SET password = 'admin' WHERE id = 2", DB)
    try:
        run = acceptance_run(fake.opts["http_port"], "--only", "default_admin", "--no-attachment")
    finally:
        set_admin_password(cluster, "correct horse battery")
    assert run.returncode == 1, run.stdout
    assert "FAIL default_admin: admin/admin logs in: uid 2, is_admin True" in run.stdout


def test_acceptance_attachment_needs_the_password_from_a_secret_source(fake):
    run = acceptance_run(fake.opts["http_port"], "--only", "attachment")
    assert run.returncode == 1 and "FAIL attachment: no administrator password" in run.stdout
    run = acceptance_run(fake.opts["http_port"], "--only", "attachment",
                         env={"ODOO_ADMIN_PASSWORD": "correct horse battery"})
    assert run.returncode == 0, run.stdout
    run = acceptance_run(fake.opts["http_port"], "--only", "attachment", env={"ODOO_ADMIN_PASSWORD": "wrong"})
    assert run.returncode == 1 and "admin cannot log in: Access Denied" in run.stdout


def test_fake_attachment_roundtrip_is_byte_for_byte(fake):
    """Upload through call_kw, download /web/content: same bytes; no session: refused."""
    site = acceptance.Site(f"http://127.0.0.1:{fake.opts['http_port']}")
    assert site.jsonrpc("/web/dataset/call_kw/ir.attachment/create", {
        "model": "ir.attachment", "method": "create", "args": [{"name": "x", "datas": "eA=="}],
        "kwargs": {}})["error"]["code"] == 100
    answer = site.jsonrpc("/web/session/authenticate", {"db": DB, "login": "admin", "password": "correct horse battery"})
    assert answer["result"]["uid"] == 2
    data = os.urandom(5000)
    att = site.jsonrpc("/web/dataset/call_kw/ir.attachment/create", {
        "model": "ir.attachment", "method": "create",
        "args": [{"name": "blob.bin", "datas": base64.b64encode(data).decode()}], "kwargs": {}})["result"]
    status, headers, body = site.request("GET", f"/web/content/{att}?download=true")
    assert status == 200 and body == data
    assert headers["content-disposition"] == 'attachment; filename="blob.bin"'
    anonymous = acceptance.Site(site.url)
    assert anonymous.request("GET", f"/web/content/{att}")[0] == 404


# -- pure parts of the acceptance module -----------------------------------------------------------
def test_journal_lines_classified():
    lines = [
        "2026-12-01 02:00:00,123 42 INFO odoo odoo.modules.loading: Modules loaded.",
        "2026-12-01 02:00:01,123 42 WARNING odoo odoo.http: Access Denied",
        "2026-12-01 02:00:02,123 42 WARNING ? odoo.tools.config: option db_host reads 'False' ...",
        "2026-12-01 02:00:03,123 43 ERROR FAKE-ODOO fake_odoo.rpc: FAKE Odoo: cannot read /x",
        "Traceback (most recent call last):",
    ]
    bad, refused, count = acceptance.journal_problems(lines)
    assert refused == 1 and count == 5
    assert [b.split()[3] for b in bad] == ["WARNING", "ERROR"]


def test_process_roles_of_odoo_and_the_fake():
    assert acceptance.role_of("python3", ["odoo: WorkerCron 1234 odoo"]) == "cron"
    assert acceptance.role_of("python3", ["odoo: WorkerHTTP 1233 "]) == "http"
    assert acceptance.role_of("python3", ["/opt/odoo/venv/bin/python3", "/opt/odoo/src/odoo-bin", "gevent", "-c", "x"]) == "gevent"
    assert acceptance.role_of("odoo:cron", ["python3", "odoo-bin", "-c", "x"]) == "cron"
    assert acceptance.role_of("odoo:http", ["python3", "odoo-bin", "-c", "x"]) == "http"
    # Without setproctitle (not in Odoo's requirements.txt): the cron worker is niced.
    assert acceptance.role_of("python3", ["python3", "odoo-bin", "-c", "x"]) == "http"
    assert acceptance.role_of("python3", ["python3", "odoo-bin", "-c", "x"], nice=10) == "cron"
    assert acceptance.role_of("python3", ["python3", "-c", "pass"]) is None


def test_login_page_without_a_form_or_csrf_is_not_a_login_page():
    assert acceptance.parse_login_page("<form method=post><input name=login>"
                                       "<input name=password type=password></form>")[0] is None
    form, assets = acceptance.parse_login_page(
        '<link rel="stylesheet" href="/web/assets/1/web.assets_frontend.min.css"/>'
        '<script src="/web/assets/1/web.assets_frontend_lazy.min.js"></script>'
        '<script src="/web/static/x.js"></script>'
        '<form method="post" action="/web/login"><input type="hidden" name="csrf_token" value="x"/>'
        '<input name="login"/><input type="password" name="password"/></form>')
    assert form["action"] == "/web/login"
    assert assets == ["/web/assets/1/web.assets_frontend.min.css", "/web/assets/1/web.assets_frontend_lazy.min.js"]


def test_acceptance_module_is_stdlib_only_and_runs_alone(tmp_path):
    """It ships to the server as one file: no import of the project or of a third party."""
    import ast
    from odoo_pulumi.acceptance import __file__ as path
    tree = ast.parse(open(path).read())
    roots = {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    roots |= {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert roots - {"__future__"} <= set(sys.stdlib_module_names), roots
    copy = tmp_path / "odoo-acceptance"
    copy.write_text(open(path).read())
    r = subprocess.run([sys.executable, "-I", str(copy), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--server" in r.stdout
    r = subprocess.run([sys.executable, "-I", str(copy)], capture_output=True, text=True)
    assert r.returncode == 2 and "choose --http, --server or both" in r.stderr


def test_children_classified_from_proc(tmp_path):
    """The workers check reads /proc: parent pid, state, comm and cmdline of each child."""
    def proc(pid, ppid, state, comm, argv):
        d = tmp_path / str(pid)
        d.mkdir()
        (d / "stat").write_text(f"{pid} ({comm}) {state} {ppid} 1 1 0 -1\n")
        (d / "comm").write_text(comm + "\n")
        (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    proc(100, 1, "S", "python3", ["python3", "odoo-bin", "-c", "/etc/odoo/odoo.conf"])
    proc(101, 100, "S", "python3", ["odoo: WorkerHTTP 101 "])
    proc(102, 100, "S", "odoo:http", ["python3", "odoo-bin"])
    proc(103, 100, "T", "python3", ["odoo: WorkerCron 103 odoo"])
    proc(104, 100, "S", "python3", ["python3", "odoo-bin", "gevent", "-c", "x"])
    proc(105, 999, "S", "odoo:cron", ["python3", "odoo-bin"])  # another parent
    (tmp_path / "self").mkdir()
    assert acceptance.classify_children(100, str(tmp_path)) == {
        "http": [(101, "S"), (102, "S")], "cron": [(103, "T")], "gevent": [(104, "S")]}
