"""Tests of the FAKE Odoo fixture (testbed/fake-odoo) and its archive script.

The end-to-end tests prove a deployment works by installing this fake in place of
Odoo (which cannot be downloaded here). A fake that lies - wrong process count, a
websocket handshake it should refuse, a PostgreSQL error it swallows - would make those
proofs worthless, so its behaviour is pinned here against real programs: a throwaway
PostgreSQL cluster (peer, md5 and SCRAM logins), real sockets, real signals.

PostgreSQL server binaries (/usr/lib/postgresql/<major>/bin) are needed for most tests;
without them those tests are skipped with the reason.
"""

import base64
import glob
import hashlib
import http.client
import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAKE = ROOT / "testbed" / "fake-odoo"
ODOO_BIN = FAKE / "odoo-bin"
MAKE_ARCHIVE = ROOT / "testbed" / "scripts" / "make-fake-odoo-archive"
BANNER = "FAKE Odoo (odoo-pulumi test fixture)"
RFC6455_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # the sample key of RFC 6455, section 1.3 ...
RFC6455_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # ... and the accept value it gives


def _load_pg():
    """Import the fake's PostgreSQL client without putting the fake tree on sys.path."""
    spec = importlib.util.spec_from_file_location("fake_odoo_pg", FAKE / "fake_odoo" / "pg.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pg = _load_pg()


def _pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return Path(found[-1]).parent if found else None


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(port, path, headers=None, method="GET"):
    """(status, headers, body) of one request; no exception on 4xx/5xx."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read().decode()
    finally:
        conn.close()


def children_of(pid):
    """{child pid: comm} of the direct children of pid, read from /proc."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found[int(entry)] = comm
    return found


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# -- a throwaway PostgreSQL cluster ---------------------------------------------------
class Cluster:
    """PostgreSQL in a temp dir, run by a non-root user, socket in the temp dir.

    Authentication: peer on the socket with an ident map letting the test's OS user log
    in as itself and as `fake_missing_role` / `fake_nocreatedb` (so the missing-role and
    no-CREATEDB paths can be tested without other OS users); md5 for `fake_md5` and
    SCRAM-SHA-256 for everyone else over TCP on 127.0.0.1.
    """

    def __init__(self, bindir):
        self.bindir = bindir
        self.me = pwd.getpwuid(os.geteuid()).pw_name
        self.owner = "postgres" if os.geteuid() == 0 else self.me
        self.base = Path(tempfile.mkdtemp(prefix="fake-odoo-pg-"))
        self.base.chmod(0o755)
        self.data, self.sock = self.base / "data", self.base / "sock"
        self.port = free_port()
        self.role = self.me  # the role the fake logs in as (peer: same as the OS user)

    def _as_owner(self, argv):
        prefix = ["runuser", "-u", self.owner, "--"] if os.geteuid() == 0 else []
        return subprocess.run(prefix + [str(a) for a in argv], capture_output=True,
                              text=True, timeout=60)

    def psql(self, sql, db="postgres"):
        res = self._as_owner([self.bindir / "psql", "-X", "-h", self.sock, "-p", self.port,
                              "-d", db, "-v", "ON_ERROR_STOP=1", "-Atc", sql])
        assert res.returncode == 0, f"psql failed: {res.stderr}"
        return res.stdout.strip()

    def start(self):
        for path in (self.data, self.sock):
            path.mkdir()
            if os.geteuid() == 0:
                shutil.chown(path, self.owner, self.owner)
        res = self._as_owner([self.bindir / "initdb", "-D", self.data, "-U", self.owner,
                              "-E", "UTF8", "--no-locale", "--auth-local=peer",
                              "--auth-host=scram-sha-256"])
        assert res.returncode == 0, f"initdb failed: {res.stderr}"
        hba = ("local all all peer map=fake\n"
               "host all fake_md5 127.0.0.1/32 md5\n"
               "host all all 127.0.0.1/32 scram-sha-256\n")
        ident = "".join(f"fake {os_user} {role}\n" for os_user, role in (
            (self.owner, self.owner), (self.me, self.me),
            (self.me, "fake_missing_role"), (self.me, "fake_nocreatedb")))
        for name, text in (("pg_hba.conf", hba), ("pg_ident.conf", ident)):
            (self.data / name).write_text(text)
        res = self._as_owner([self.bindir / "pg_ctl", "-D", self.data, "-l",
                              self.data / "server.log", "-w", "-t", "30", "-o",
                              f"-k {self.sock} -p {self.port} -c listen_addresses=127.0.0.1",
                              "start"])
        assert res.returncode == 0, f"pg_ctl start failed: {res.stdout} {res.stderr}"
        if self.me != self.owner:
            self.psql(f'CREATE ROLE "{self.me}" LOGIN CREATEDB NOSUPERUSER')
        self.psql("CREATE ROLE fake_nocreatedb LOGIN NOCREATEDB")
        self.psql("CREATE ROLE fake_tcp LOGIN PASSWORD 'fake-tcp-secret'")
        self.psql("SET password_encryption = 'md5'; "
                  "CREATE ROLE fake_md5 LOGIN PASSWORD 'fake-md5-secret'")

    def stop(self):
        self._as_owner([self.bindir / "pg_ctl", "-D", self.data, "-m", "immediate", "stop"])
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as non-root")
    c = Cluster(bindir)
    try:
        c.start()
        yield c
    finally:
        c.stop()


# -- running the fake ------------------------------------------------------------------
def write_conf(directory, cluster=None, **options):
    """An odoo.conf for the fake on free loopback ports; returns (path, options)."""
    opts = {
        "http_interface": "127.0.0.1",
        "http_port": free_port(),
        "gevent_port": free_port(),
        "data_dir": str(Path(directory) / "data"),
        "workers": 0,
        "max_cron_threads": 1,
    }
    if cluster:
        opts.update(db_host=str(cluster.sock), db_port=cluster.port)
    opts.update(options)
    path = Path(directory) / "odoo.conf"
    path.write_text("[options]\n" + "".join(f"{k} = {v}\n" for k, v in opts.items()))
    return path, opts


def run_fake(*args, timeout=30):
    return subprocess.run([sys.executable, str(ODOO_BIN), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


class Running:
    """A fake server started in its own session, its log in a file."""

    def __init__(self, conf, opts, log):
        self.opts, self.log = opts, log
        self.handle = open(log, "w")
        self.proc = subprocess.Popen([sys.executable, str(ODOO_BIN), "-c", str(conf)],
                                     stdout=self.handle, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, expect_children=0, timeout=60):
        """Return self once healthy; on failure stop the fake (no leaked processes) and fail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise AssertionError(f"fake exited {self.proc.returncode}:\n{self.text()}")
            try:
                status, _, _ = http_get(self.opts["http_port"], "/web/health")
                if status == 200 and len(children_of(self.proc.pid)) >= expect_children:
                    if not expect_children or _accepts(self.opts["gevent_port"]):
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"fake not ready in {timeout}s:\n{self.text()}")

    def text(self):
        return Path(self.log).read_text()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        try:  # whatever the fake left behind in its session goes too
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.handle.close()


def _accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def prefork(cluster, tmp_path_factory):
    """The production shape: workers = 3, max_cron_threads = 1, behind a proxy."""
    directory = tmp_path_factory.mktemp("prefork")
    conf, opts = write_conf(directory, cluster, workers=3, max_cron_threads=1,
                            proxy_mode=True, list_db=False)
    server = Running(conf, opts, directory / "odoo.log").wait_ready(expect_children=5)
    yield server
    server.stop()


# -- tests without PostgreSQL --------------------------------------------------------------
def test_version_names_the_fake():
    """Nobody may mistake the fixture for Odoo: --version says FAKE."""
    res = run_fake("--version")
    assert res.returncode == 0
    assert res.stdout.strip() == f"{BANNER} 19.0"


def test_fake_needs_only_the_standard_library():
    """The installer runs `pip install -r requirements.txt` offline: nothing may be needed."""
    lines = [line.strip() for line in (FAKE / "requirements.txt").read_text().splitlines()]
    assert [line for line in lines if line and not line.startswith("#")] == []
    import ast

    local = {"fake_odoo", "odoo"}
    for path in [ODOO_BIN, *FAKE.rglob("*.py")]:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top in local, f"{path}: imports {name}"


def test_config_file_errors_are_fatal(tmp_path):
    """A config the service user cannot read, or a duplicated key, must stop the fake."""
    res = run_fake("-c", tmp_path / "missing.conf")
    assert res.returncode == 1 and "cannot read the config file" in res.stderr
    dup = tmp_path / "dup.conf"
    dup.write_text("[options]\nworkers = 2\nworkers = 3\n")
    res = run_fake("-c", dup)
    assert res.returncode == 1 and "not valid" in res.stderr and "workers" in res.stderr


def test_startup_fails_without_a_server(tmp_path):
    """No PostgreSQL behind db_host: exit non-zero and say where it looked, like libpq."""
    conf, _ = write_conf(tmp_path, db_host=str(tmp_path), db_port=5999)
    res = run_fake("-c", conf)
    assert res.returncode == 1
    assert f'socket "{tmp_path}/.s.PGSQL.5999" failed' in res.stderr
    assert "Is the server running locally" in res.stderr


def test_config_options_and_aliases(tmp_path):
    """Odoo 17 configs say longpolling_port; typos must be reported, not ignored."""
    conf = tmp_path / "odoo.conf"
    conf.write_text("[options]\nlongpolling_port = 9123\nworker = 4\nproxy_mode = True\n"
                    "db_host = False\nhttp_interface =\ndbfilter = ^%d$\n")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from fake_odoo.config import Config; "
            "import json; c = Config(['-c', sys.argv[2]]); "
            "print(json.dumps([c['gevent_port'], c['proxy_mode'], c['db_host'], "
            "c.http_interface, c['dbfilter'], c.warnings]))")
    res = subprocess.run([sys.executable, "-c", code, str(FAKE), str(conf)],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    port, proxy, db_host, iface, dbfilter, warnings = json.loads(res.stdout)
    assert (port, proxy, db_host, iface, dbfilter) == (9123, True, "", "0.0.0.0", "^%d$")
    assert any("longpolling_port is deprecated" in w for w in warnings)
    assert any("unknown option 'worker'" in w for w in warnings)


# -- the PostgreSQL protocol client ---------------------------------------------------------
def test_pg_client_peer_login_and_queries(cluster):
    """Peer login over the socket, text results, NULLs, and a session that survives an error."""
    with pg.connect(host=str(cluster.sock), port=cluster.port) as conn:
        assert conn.scalar("SELECT current_user") == cluster.role
        assert conn.server_parameters["server_version"].split(".")[0] == cluster.bindir.parent.name
        assert conn.query("SELECT NULL, " + pg.quote_literal("it's") + ", 42") == [
            (None, "it's", "42")]
        with pytest.raises(pg.PgError) as err:
            conn.query("SELECT 1/0")
        assert err.value.code == "22012" and "division by zero" in str(err.value)
        assert conn.query("SELECT 'still usable'") == [("still usable",)]


def test_pg_client_reports_a_missing_role(cluster):
    """A missing role must surface the server's own message and SQLSTATE."""
    with pytest.raises(pg.PgError) as err:
        pg.connect(host=str(cluster.sock), port=cluster.port, user="fake_missing_role")
    assert err.value.code == "28000"
    assert 'FATAL:  role "fake_missing_role" does not exist' in str(err.value)


def test_pg_client_password_logins_over_tcp(cluster):
    """db_host = 127.0.0.1 with a password: SCRAM-SHA-256 and md5 both work, bad ones fail."""
    with pg.connect("127.0.0.1", cluster.port, "fake_tcp", password="fake-tcp-secret") as conn:
        assert conn.scalar("SELECT current_user") == "fake_tcp"
    with pg.connect("127.0.0.1", cluster.port, "fake_md5", password="fake-md5-secret") as conn:
        assert conn.scalar("SELECT current_user") == "fake_md5"
    with pytest.raises(pg.PgError) as err:
        pg.connect("127.0.0.1", cluster.port, "fake_tcp", password="wrong")
    assert err.value.code == "28P01" and "password authentication failed" in str(err.value)
    with pytest.raises(pg.PgConnectError, match="none was given"):
        pg.connect("127.0.0.1", cluster.port, "fake_tcp", password="")


# -- odoo-bin against PostgreSQL ------------------------------------------------------------
def test_database_initialised_once(cluster, tmp_path):
    """`-d DB -i base --stop-after-init` is provisioning's one-time step: create, mark, repeat safely."""
    conf, opts = write_conf(tmp_path, cluster)
    first = run_fake("-c", conf, "-d", "fake_db1", "-i", "base,web", "--stop-after-init",
                     "--without-demo=all", "--some-unknown=flag")
    assert first.returncode == 0, first.stderr
    assert f"FAKE Odoo: connected to PostgreSQL as {cluster.role}" in first.stderr
    assert "created database fake_db1" in first.stderr
    assert "ignoring unknown command-line argument '--some-unknown=flag'" in first.stderr
    second = run_fake("-c", conf, "-d", "fake_db1", "-i", "base", "--stop-after-init")
    assert second.returncode == 0, second.stderr
    assert "database fake_db1 already exists" in second.stderr
    owner, collate = cluster.psql(
        "SELECT pg_get_userbyid(datdba), datcollate FROM pg_database "
        "WHERE datname = 'fake_db1'").split("|")
    assert (owner, collate) == (cluster.role, "C")
    assert cluster.psql("SELECT name || '=' || state FROM ir_module_module ORDER BY name",
                        "fake_db1").split() == ["base=installed", "web=installed"]
    assert cluster.psql("SELECT count(*), bool_and(NOT demo) FROM fake_odoo_marker",
                        "fake_db1") == "1|t"
    assert (Path(opts["data_dir"]) / "filestore" / "fake_db1" / "FAKE_ODOO_FILESTORE.txt").is_file()


def test_role_without_createdb_is_refused(cluster, tmp_path):
    """The Odoo role needs CREATEDB to create its database; without it the step must fail."""
    conf, _ = write_conf(tmp_path, cluster, db_user="fake_nocreatedb")
    res = run_fake("-c", conf, "-d", "fake_db2", "-i", "base", "--stop-after-init")
    assert res.returncode == 1
    assert "permission denied to create database" in res.stderr
    assert cluster.psql("SELECT count(*) FROM pg_database WHERE datname = 'fake_db2'") == "0"


def test_startup_fails_for_a_missing_role(cluster, tmp_path):
    """If provisioning forgot the role, the service must fail with PostgreSQL's message."""
    conf, opts = write_conf(tmp_path, cluster, db_user="fake_missing_role")
    res = run_fake("-c", conf)
    assert res.returncode == 1
    assert 'role "fake_missing_role" does not exist' in res.stderr
    assert not _accepts(opts["http_port"])


def test_unwritable_data_dir_is_fatal(cluster, tmp_path):
    """A hardened unit without write access to data_dir must fail at start, not at login."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    conf, _ = write_conf(tmp_path, cluster, data_dir=str(blocker / "data"))
    res = run_fake("-c", conf)
    assert res.returncode == 1 and "data_dir" in res.stderr and "not usable" in res.stderr


# -- the prefork server -----------------------------------------------------------------------
def test_health_route(prefork):
    """Odoo's /web/health: what load balancers and the e2e test poll."""
    status, headers, body = http_get(prefork.opts["http_port"], "/web/health")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Fake-Odoo"] == "1"
    assert json.loads(body) == {"status": "pass"}
    status, _, body = http_get(prefork.opts["http_port"], "/web/health?db_server_status=1")
    assert status == 200 and json.loads(body)["db_server_status"] is True


def test_other_routes(prefork):
    """Login page 200, list_db = False hides the manager, unknown paths 404, all marked fake."""
    port = prefork.opts["http_port"]
    status, headers, body = http_get(port, "/web/login")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and "FAKE" in body
    status, headers, _ = http_get(port, "/web/database/manager")
    assert status == 403 and headers["X-Fake-Odoo"] == "1"
    status, headers, _ = http_get(port, "/odoo/nothing-here")
    assert status == 404 and headers["X-Fake-Odoo"] == "1"


def test_odoo19_own_headers_and_login_failures(prefork):
    """What Odoo 19 sends itself (so Nginx must not add it twice): text/javascript with
    nosniff and a week of cache on static files, X-Frame-Options on the login page; a
    wrong password logged as Odoo logs it, with the address proxy_mode sees."""
    port = prefork.opts["http_port"]
    status, headers, body = http_get(port, "/web/static/lib/luxon/luxon.js")
    assert status == 200 and headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert headers["Cache-Control"] == "public, max-age=604800" and headers["X-Content-Type-Options"] == "nosniff"
    assert len(body) > 1024
    _, headers, _ = http_get(port, "/web/login")
    assert headers["X-Frame-Options"] == "SAMEORIGIN" and "X-Content-Type-Options" not in headers
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    # The login form (the JSON-RPC login's refusals: testbed/tests/test_fake_odoo_admin.py).
    conn.request("POST", "/web/login", body=b"login=mallory&password=guess",
                 headers={"Content-Type": "application/x-www-form-urlencoded",
                          "X-Forwarded-Host": "login.example.com", "X-Forwarded-For": "198.51.100.4"})
    assert conn.getresponse().status == 200
    conn.close()
    deadline = time.monotonic() + 5
    while "Login failed for login:mallory from 198.51.100.4" not in prefork.text():
        assert time.monotonic() < deadline, prefork.text()[-2000:]
        time.sleep(0.1)


def test_prefork_process_tree(prefork, cluster):
    """workers = 3, max_cron_threads = 1: exactly 3 HTTP + 1 cron + 1 evented child."""
    kids = children_of(prefork.proc.pid)
    assert sorted(kids.values()) == ["odoo:cron", "odoo:gevent", "odoo:http", "odoo:http",
                                     "odoo:http"]
    assert Path(f"/proc/{prefork.proc.pid}/comm").read_text().strip() == "odoo:master"
    gevent = next(pid for pid, comm in kids.items() if comm == "odoo:gevent")
    argv = Path(f"/proc/{gevent}/cmdline").read_bytes().split(b"\0")
    assert argv[1].endswith(b"odoo-bin") and argv[2] == b"gevent"
    assert f"FAKE Odoo: connected to PostgreSQL as {cluster.role}" in prefork.text()


def test_proxy_headers_seen_and_logged(prefork):
    """Nginx's X-Forwarded-* must reach Odoo; proxy_mode uses them only with X-Forwarded-Host."""
    port = prefork.opts["http_port"]
    sent = {"X-Forwarded-Host": "erp.example.com", "X-Forwarded-Proto": "https",
            "X-Forwarded-For": "203.0.113.7, 10.0.0.1"}
    status, _, body = http_get(port, "/fake/headers", sent)
    data = json.loads(body)
    assert status == 200
    assert {k: data["received"][k] for k in sent} == sent
    assert data["effective"] == {"proxy_fix_applied": True, "remote_addr": "10.0.0.1",
                                 "scheme": "https", "host": "erp.example.com",
                                 "url_root": "https://erp.example.com/"}
    _, _, body = http_get(port, "/fake/headers", {"X-Forwarded-Proto": "https"})
    assert json.loads(body)["effective"]["proxy_fix_applied"] is False
    deadline = time.monotonic() + 5
    while "X-Forwarded-Host='erp.example.com'" not in prefork.text():
        assert time.monotonic() < deadline, prefork.text()
        time.sleep(0.1)
    line = next(l for l in prefork.text().splitlines() if "'erp.example.com'" in l)
    assert "X-Forwarded-Proto='https'" in line and "'203.0.113.7, 10.0.0.1'" in line


def _handshake(port, key=RFC6455_KEY, upgrade=True):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    extra = (f"Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
             f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n") if upgrade else ""
    sock.sendall(f"GET /websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n".encode())
    reader = sock.makefile("rb")
    status = reader.readline().decode()
    headers = {}
    while (line := reader.readline().decode().strip()):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return sock, reader, status, headers


def _frame(opcode, payload, mask=b"\x01\x02\x03\x04"):
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + mask + masked


def _read_frame(reader):
    head = reader.read(2)
    size = head[1] & 0x7F
    return head[0] & 0x0F, reader.read(size)


def test_websocket_on_the_evented_port(prefork):
    """Websockets belong on gevent_port: 101 with the RFC 6455 accept, then frames flow."""
    sock, reader, status, headers = _handshake(prefork.opts["gevent_port"])
    try:
        assert status.startswith("HTTP/1.1 101 ")
        assert headers["sec-websocket-accept"] == RFC6455_ACCEPT
        assert headers["upgrade"].lower() == "websocket" and headers["x-fake-odoo"] == "1"
        opcode, payload = _read_frame(reader)
        assert opcode == 1 and json.loads(payload)["served_by"] == "gevent"
        sock.sendall(_frame(1, b"ping from test"))
        assert _read_frame(reader) == (1, b"ping from test")
        sock.sendall(_frame(8, struct.pack("!H", 1000)))
        assert _read_frame(reader)[0] == 8
    finally:
        sock.close()
    other_key = base64.b64encode(b"0123456789abcdef").decode()
    expected = base64.b64encode(hashlib.sha1(
        (other_key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    sock, _, status, headers = _handshake(prefork.opts["gevent_port"], key=other_key)
    sock.close()
    assert status.startswith("HTTP/1.1 101 ") and headers["sec-websocket-accept"] == expected


def test_websocket_without_upgrade_is_refused(prefork):
    """A proxy that drops Upgrade/Connection (no proxy_http_version 1.1) must get 400."""
    sock, _, status, headers = _handshake(prefork.opts["gevent_port"], upgrade=False)
    sock.close()
    assert status.startswith("HTTP/1.1 400 ") and headers["x-fake-odoo"] == "1"


def test_websocket_on_the_http_port_fails_like_odoo(prefork):
    """/websocket routed to http_port (a common Nginx mistake) answers Odoo's error."""
    sock, reader, status, _ = _handshake(prefork.opts["http_port"])
    body = reader.read().decode()
    sock.close()
    assert status.startswith("HTTP/1.1 500 ")
    assert ("Couldn't bind the websocket. Is the connection opened on the evented port "
            f"({prefork.opts['gevent_port']})?") in body


# -- lifecycle ----------------------------------------------------------------------------------
def test_respawn_then_sigterm_stops_everything(cluster, tmp_path):
    """A dead worker is replaced; SIGTERM (systemctl stop) ends every process, exit 0."""
    conf, opts = write_conf(tmp_path, cluster, workers=3, max_cron_threads=1)
    server = Running(conf, opts, tmp_path / "odoo.log").wait_ready(expect_children=5)
    try:
        master = server.proc.pid
        victim = next(pid for pid, comm in children_of(master).items() if comm == "odoo:http")
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while True:
            kids = children_of(master)
            if victim not in kids and list(kids.values()).count("odoo:http") == 3:
                break
            assert time.monotonic() < deadline, f"no respawn: {kids}\n{server.text()}"
            time.sleep(0.05)
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(20) == 0
        assert time.monotonic() - started < 5
        assert [pid for pid in kids if alive(pid)] == []
        assert not _accepts(opts["http_port"]) and not _accepts(opts["gevent_port"])
        assert "master stopped" in server.text()
    finally:
        server.stop()


def test_children_leave_when_the_master_is_killed(cluster, tmp_path):
    """SIGKILL to the master (OOM killer, kill -9) must not leave workers holding the ports."""
    conf, opts = write_conf(tmp_path, cluster, workers=2, max_cron_threads=1)
    server = Running(conf, opts, tmp_path / "odoo.log").wait_ready(expect_children=4)
    try:
        kids = children_of(server.proc.pid)
        server.proc.kill()
        server.proc.wait(5)
        deadline = time.monotonic() + 5
        while [pid for pid in kids if alive(pid)]:
            assert time.monotonic() < deadline, f"orphans left: {kids}"
            time.sleep(0.1)
        assert not _accepts(opts["gevent_port"])
    finally:
        server.stop()


def test_threaded_mode(cluster, tmp_path):
    """workers = 0: one process, websockets served on http_port itself."""
    conf, opts = write_conf(tmp_path, cluster, workers=0, max_cron_threads=2)
    server = Running(conf, opts, tmp_path / "odoo.log").wait_ready()
    try:
        assert children_of(server.proc.pid) == {}
        sock, _, status, headers = _handshake(opts["http_port"])
        sock.close()
        assert status.startswith("HTTP/1.1 101 ")
        assert headers["sec-websocket-accept"] == RFC6455_ACCEPT
        assert not _accepts(opts["gevent_port"])
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(20) == 0
    finally:
        server.stop()


# -- the archive ------------------------------------------------------------------------------
def _make_archive(*args, env=None):
    res = subprocess.run([str(MAKE_ARCHIVE), *map(str, args)], capture_output=True, text=True,
                         timeout=60, env=env)
    assert res.returncode == 0, res.stderr
    return Path(res.stdout.strip().splitlines()[-1])


def test_archive_is_reproducible_and_shaped_like_odoos(tmp_path):
    """Pulumi compares assets by hash: same tree, same bytes; one odoo-<VERSION>/ on top."""
    env = dict(os.environ, ODOO_PULUMI_CACHE=str(tmp_path / "cache"))
    first = _make_archive(env=env)
    assert first == tmp_path / "cache" / "fake-odoo" / "fake-odoo-19.0.tar.gz"
    second = _make_archive("19.0", tmp_path / "other")
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert {n.split("/")[0] for n in names} == {"odoo-19.0"}
    for expected in ("odoo-19.0/odoo-bin", "odoo-19.0/requirements.txt",
                     "odoo-19.0/odoo/release.py", "odoo-19.0/fake_odoo/pg.py"):
        assert expected in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert {(m.uid, m.gid, m.mtime) for m in members} == {(0, 0, 946684800)}
    assert next(m for m in members if m.name == "odoo-19.0/odoo-bin").mode == 0o755
    with pytest.raises(AssertionError):
        _make_archive("nineteen", tmp_path / "bad")


def test_archive_installs_like_the_installer_does(tmp_path):
    """Extract, venv, offline `pip install -r requirements.txt`, run: the installer's steps."""
    archive = _make_archive("17.0", tmp_path)
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4
            tar.extractall(tmp_path / "src", filter="data")
        else:
            tar.extractall(tmp_path / "src")
    src = tmp_path / "src" / "odoo-17.0"
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    pip = subprocess.run([venv / "bin" / "python3", "-m", "pip", "install", "--no-index",
                          "-q", "-r", src / "requirements.txt"],
                         capture_output=True, text=True, timeout=120)
    assert pip.returncode == 0, pip.stderr
    res = subprocess.run([venv / "bin" / "python3", src / "odoo-bin", "--version"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0 and res.stdout.strip() == f"{BANNER} 17.0"


@pytest.fixture(scope="module")
def office(cluster, tmp_path_factory):
    """Prefork over an initialised database, as the load test meets it: Odoo 19 refuses a
    login to a database that does not exist, so the office routes need `-i base` first."""
    directory = tmp_path_factory.mktemp("office")
    conf, opts = write_conf(directory, cluster, workers=3, max_cron_threads=1, proxy_mode=True,
                            list_db=False, db_name="odoo", dbfilter="^odoo$")
    init = run_fake("-c", conf, "-d", "odoo", "-i", "base", "--stop-after-init", timeout=120)
    assert init.returncode == 0, init.stderr
    server = Running(conf, opts, directory / "odoo.log").wait_ready(expect_children=5)
    yield server
    server.stop()


def test_load_test_office_routes(office):
    """The routes the load test uses: a JSON-RPC login sets a session cookie that every
    worker accepts, call_kw answers search_read/read/name_search on FAKE data, /web names
    an asset bundle; and `odoo_pulumi.loadtest` runs against them on loopback without error."""
    from odoo_pulumi import loadtest

    url = f"http://127.0.0.1:{office.opts['http_port']}"
    s = loadtest.Session(url, 10)
    with pytest.raises(loadtest.OdooError, match="SessionExpired"):
        s.call_kw("res.partner", "search_read", [[]], {"limit": 1})
    with pytest.raises(loadtest.OdooError, match="AccessDenied"):
        s.rpc("/web/session/authenticate", {"db": "odoo", "login": "admin", "password": "wrong"})
    assert s.rpc("/web/session/authenticate", {"db": "odoo", "login": "admin", "password": "admin"})["uid"] == 2
    rows = s.call_kw("res.partner", "search_read", [[]], {"fields": ["display_name"], "limit": 80})
    assert len(rows) == 80 and rows[0]["display_name"].startswith("FAKE Partner")
    assert s.call_kw("res.partner", "read", [[rows[3]["id"]]], {"fields": ["email"]})[0]["id"] == rows[3]["id"]
    assert s.call_kw("res.partner", "name_search", [], {"name": "Partner 12", "limit": 8})
    with pytest.raises(loadtest.OdooError, match="KeyError"):
        s.call_kw("sale.order", "search_read", [[]], {})
    r = loadtest.run_step(loadtest.Options(url=url, users=[3], duration=3, warmup=1, think=0.2, timeout=10,
                                           seed=2), 3, log=lambda m: None)
    assert r.requests > 10 and r.errors == {} and r.holds, (r.errors, r.verdict)
    assert {"partner_list", "partner_read", "name_search", "product_list", "assets"} <= set(r.by_action)
