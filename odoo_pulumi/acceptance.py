#!/usr/bin/env python3
"""odoo-acceptance: check a deployed Odoo the way its operator would.

One file, Python 3 standard library only, so the same code runs on the operator's
machine (`make acceptance`), on the server (the `health` step installs it as
/usr/local/sbin/odoo-acceptance and runs it at every `pulumi up` that changes
something) and in the tests. It prints one `PASS`/`FAIL` line per check with what it
measured and exits 1 when any check failed (2 on bad usage).

HTTP checks (from anywhere, through Nginx):
  health_route      /web/health 200
  login_page        /web/login 200 with a real login form (login, password, csrf_token)
  asset_bundle      every /web/assets/... bundle the login page loads: 200, and gzip when asked
  database_manager  /web/database/manager and /web/database/selector refused
  default_admin     admin/admin (and <login>/admin) refused by /web/session/authenticate
  websocket         /websocket upgraded: 101 with the right Sec-WebSocket-Accept
  attachment        an attachment uploaded as the administrator (JSON-RPC, ir.attachment
                    create with base64 datas) and downloaded from /web/content/<id> byte
                    for byte, then deleted; needs the administrator's password from
                    --password-file, --password-stdin or $ODOO_ADMIN_PASSWORD (never argv)
Server checks (on the server, as root):
  workers           the children of odoo.service's main process: odoo.conf's `workers` HTTP
                    workers, `max_cron_threads` cron workers and the evented process, all
                    running (not stopped, not zombies), cron workers the same over a few seconds
  cron              ir_cron (psql as odoo): a scheduled action has run (lastcall) and no
                    active one is overdue
  journal           no WARNING/ERROR/CRITICAL line from odoo.service since its last start
                    (refused logins, Odoo's "Access Denied" warnings, are counted apart)
"""

from __future__ import annotations

import argparse
import base64
import configparser
import gzip
import hashlib
import html.parser
import http.client
import json
import os
import re
import secrets
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse

HTTP_CHECKS = ("health_route", "login_page", "asset_bundle", "database_manager", "default_admin",
               "websocket", "attachment")
SERVER_CHECKS = ("workers", "cron", "journal")
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455
ATTACHMENT_BYTES = 200 * 1024
CRON_OVERDUE_S = 600  # Odoo's cron workers poll every 60-70 s: 10 min late means none runs
# Odoo's log line: "<date> <time>,<ms> <pid> <LEVEL> <db> <logger>: <message>".
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \d+ (?P<level>[A-Z]+) (?P<db>\S+) (?P<logger>[^:\s]+): (?P<msg>.*)$")
BAD_LEVELS = ("WARNING", "ERROR", "CRITICAL")
# A refused login makes Odoo's HTTP layer log the AccessDenied as a WARNING (http.py):
# the world's (and this check's own) wrong passwords, not a fault of the server.
REFUSED_LOGIN = re.compile(r"(^|\.)http$")


class Failure(Exception):
    """A check failed; the message is the measured figure."""


# --- HTTP --------------------------------------------------------------------------------


class Site:
    """Requests to one Odoo site: URL, an optional Host header and address to connect to."""

    def __init__(self, url: str, host_header: str | None = None, connect: str | None = None,
                 insecure: bool = False, timeout: float = 30.0):
        u = urllib.parse.urlsplit(url.rstrip("/"))
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"--url {url!r}: expected http(s)://host[:port]")
        self.url, self.scheme, self.hostname = f"{u.scheme}://{u.netloc}", u.scheme, u.hostname
        self.port = u.port or (443 if u.scheme == "https" else 80)
        self.host_header = host_header or u.netloc
        self.connect_to = connect or u.hostname
        self.timeout = timeout
        self.ctx = None
        if u.scheme == "https":
            self.ctx = ssl.create_default_context()
            if insecure:
                self.ctx.check_hostname = False
                self.ctx.verify_mode = ssl.CERT_NONE
        self.cookies: dict[str, str] = {}

    def fresh(self) -> "Site":
        """The same site without cookies: a new browser session."""
        other = Site(self.url, self.host_header, self.connect_to)
        other.ctx, other.timeout = self.ctx, self.timeout
        # As a browser does, open the login page first: Odoo's session cookie rides on the
        # login then, and Nginx counts this run apart from the operator's other runs (its
        # login limit is per address and session; without a cookie, runs within a minute
        # share one allowance and the third gets 429).
        try:
            other.request("GET", "/web/login")
        except OSError:
            pass
        return other

    def socket(self) -> socket.socket:
        sock = socket.create_connection((self.connect_to, self.port), timeout=self.timeout)
        if self.ctx is not None:
            sock = self.ctx.wrap_socket(sock, server_hostname=self.hostname)
        return sock

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """(status, lower-cased headers, body); redirects are not followed."""
        conn = http.client.HTTPConnection(self.connect_to, self.port, timeout=self.timeout)
        conn.sock = self.socket()
        h = {"Host": self.host_header, "User-Agent": "odoo-acceptance", "Accept-Encoding": "identity"}
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        h.update(headers or {})
        try:
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            data = resp.read()
            for name, value in resp.getheaders():
                if name.lower() == "set-cookie":
                    k, _, rest = value.partition("=")
                    self.cookies[k.strip()] = rest.split(";")[0]
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def jsonrpc(self, path: str, params: dict) -> dict:
        """One JSON-RPC call as Odoo's web client makes it; the whole answer (result or error)."""
        body = json.dumps({"jsonrpc": "2.0", "method": "call", "id": secrets.randbelow(1 << 30),
                           "params": params}).encode()
        status, headers, data = self.request("POST", path, body, {"Content-Type": "application/json"})
        try:
            answer = json.loads(data)
        except ValueError:
            raise Failure(f"POST {path}: {status}, not a JSON-RPC answer ({len(data)} B)") from None
        if not isinstance(answer, dict) or ("result" not in answer and "error" not in answer):
            raise Failure(f"POST {path}: {status}, not a JSON-RPC answer")
        return answer


def authenticate(site: Site, db: str, login: str, password: str) -> dict:
    """Odoo's /web/session/authenticate: the JSON-RPC answer (result with uid, or error)."""
    return site.jsonrpc("/web/session/authenticate", {"db": db, "login": login, "password": password})


class _LoginPage(html.parser.HTMLParser):
    """The forms' inputs and the /web/assets/ URLs a page loads."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self.assets: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action") or "", "method": (a.get("method") or "get").lower(),
                               "inputs": {}})
        elif tag == "input" and self.forms:
            self.forms[-1]["inputs"][a.get("name") or ""] = (a.get("type") or "text").lower()
        elif tag == "script" and (a.get("src") or "").startswith("/web/assets/"):
            self.assets.append(a["src"])
        elif tag == "link" and (a.get("href") or "").startswith("/web/assets/") \
                and "stylesheet" in (a.get("rel") or ""):
            self.assets.append(a["href"])


def parse_login_page(text: str) -> tuple[dict | None, list[str]]:
    """The login form (post, with login, password and csrf_token) and the bundles loaded."""
    p = _LoginPage()
    p.feed(text)
    for form in p.forms:
        i = form["inputs"]
        if form["method"] == "post" and "login" in i and i.get("password") == "password" and "csrf_token" in i:
            return form, list(dict.fromkeys(p.assets))
    return None, list(dict.fromkeys(p.assets))


class Run:
    """The state shared by the checks of one run."""

    def __init__(self, args: argparse.Namespace, site: Site | None):
        self.args = args
        self.site = site
        self.assets: list[str] | None = None
        self.results: list[tuple[str, bool, str]] = []

    # -- HTTP checks ------------------------------------------------------------------
    def check_health_route(self) -> str:
        status, _, body = self.site.request("GET", "/web/health")
        if status != 200:
            raise Failure(f"/web/health {status} ({len(body)} B)")
        return f"/web/health 200 {' '.join(body.decode(errors='replace').split())[:60]}"

    def check_login_page(self) -> str:
        status, headers, body = self.site.request("GET", "/web/login")
        if status != 200:
            raise Failure(f"/web/login {status} ({len(body)} B)")
        form, self.assets = parse_login_page(body.decode("utf-8", errors="replace"))
        if form is None:
            raise Failure(f"/web/login 200 ({len(body)} B) without a login form (post; login, password, csrf_token)")
        return (f"/web/login 200, {len(body)} B, {headers.get('content-type', '?')}, form action "
                f"{form['action'] or '(same page)'} with login, password, csrf_token; {len(self.assets)} asset bundle(s)")

    def check_asset_bundle(self) -> str:
        if self.assets is None:
            _, _, body = self.site.request("GET", "/web/login")
            _, self.assets = parse_login_page(body.decode("utf-8", errors="replace"))
        if not self.assets:
            raise Failure("the login page loads no /web/assets/ bundle")
        figures, problems = [], []
        for url in self.assets:
            status, headers, body = self.site.request("GET", url, headers={"Accept-Encoding": "gzip"})
            name = url.rsplit("/", 1)[-1]
            encoding = headers.get("content-encoding", "")
            if status != 200:
                problems.append(f"{url} {status} ({len(body)} B)")
                continue
            if encoding != "gzip":
                problems.append(f"{name} 200 but not compressed ({len(body)} B, "
                                f"{headers.get('content-type', '?')}, no Content-Encoding: gzip)")
                continue
            try:
                plain = gzip.decompress(body)
            except OSError:
                problems.append(f"{name}: Content-Encoding gzip but the body does not decompress")
                continue
            if not plain:
                problems.append(f"{name} 200 but empty")
                continue
            figures.append(f"{name} 200 gzip {len(body)}/{len(plain)} B")
        if problems:
            raise Failure("; ".join(problems))
        return ", ".join(figures)

    def check_database_manager(self) -> str:
        seen = []
        for path in ("/web/database/manager", "/web/database/selector"):
            status, _, body = self.site.request("GET", path)
            if 200 <= status < 300:
                raise Failure(f"{path} {status} ({len(body)} B): the database manager is reachable")
            seen.append(f"{path} {status}")
        return ", ".join(seen)

    def check_default_admin(self) -> str:
        logins = list(dict.fromkeys(["admin", self.args.login]))
        seen = []
        for login in logins:
            answer = authenticate(self.site.fresh(), self.args.db, login, "admin")
            uid = (answer.get("result") or {}).get("uid") if isinstance(answer.get("result"), dict) else None
            if uid:
                raise Failure(f"{login}/admin logs in: uid {uid}, is_admin {answer['result'].get('is_admin')}")
            err = answer.get("error") or {}
            seen.append(f"{login}/admin refused ({(err.get('data') or {}).get('name') or err.get('message') or 'no uid'})")
        return ", ".join(seen)

    def check_websocket(self) -> str:
        key = base64.b64encode(os.urandom(16)).decode()
        want = base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()
        last = ""
        for attempt in range(10):  # the evented process may still be starting
            t0 = time.monotonic()
            try:
                with self.site.socket() as sock:
                    sock.sendall((
                        f"GET /websocket HTTP/1.1\r\nHost: {self.site.host_header}\r\n"
                        f"Origin: {self.site.url}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n").encode())
                    head = b""
                    while b"\r\n\r\n" not in head and len(head) < 65536:
                        chunk = sock.recv(4096)
                        if not chunk:
                            break
                        head += chunk
            except OSError as e:
                last = f"connection failed: {e}"
                time.sleep(2)
                continue
            lines = head.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
            status = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "?"
            hdrs = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            if status == "101" and hdrs.get("sec-websocket-accept") == want:
                return f"/websocket 101 in {1000 * (time.monotonic() - t0):.0f} ms, Sec-WebSocket-Accept correct"
            last = f"/websocket {status}" + ("" if status != "101" else " with a wrong Sec-WebSocket-Accept")
            time.sleep(2)
        raise Failure(last)

    def check_attachment(self) -> str:
        password = self.args.password
        if not password:
            raise Failure("no administrator password: give --password-file, --password-stdin or $ODOO_ADMIN_PASSWORD")
        site = self.site.fresh()
        answer = authenticate(site, self.args.db, self.args.login, password)
        result = answer.get("result")
        if not isinstance(result, dict) or not result.get("uid"):
            err = answer.get("error") or {}
            raise Failure(f"{self.args.login} cannot log in: {(err.get('data') or {}).get('message') or err.get('message') or result}")
        data = os.urandom(ATTACHMENT_BYTES)
        name = f"odoo-acceptance-{int(time.time())}.bin"
        answer = site.jsonrpc("/web/dataset/call_kw/ir.attachment/create", {
            "model": "ir.attachment", "method": "create",
            "args": [{"name": name, "datas": base64.b64encode(data).decode(), "mimetype": "application/octet-stream"}],
            "kwargs": {}})
        att = answer.get("result")
        if isinstance(att, list):
            att = att[0] if att else None
        if not isinstance(att, int):
            raise Failure(f"ir.attachment create gave no id: {answer.get('error') or att}")
        try:
            status, headers, body = site.request("GET", f"/web/content/{att}?download=true")
        finally:
            site.jsonrpc("/web/dataset/call_kw/ir.attachment/unlink", {
                "model": "ir.attachment", "method": "unlink", "args": [[att]], "kwargs": {}})
        if status != 200:
            raise Failure(f"/web/content/{att} {status} ({len(body)} B), uploaded {len(data)} B")
        if body != data:
            raise Failure(f"/web/content/{att} 200 but {len(body)} B came back for {len(data)} B sent "
                          f"(sha256 {hashlib.sha256(body).hexdigest()[:12]} != {hashlib.sha256(data).hexdigest()[:12]})")
        return (f"{len(data)} B uploaded as {self.args.login} (uid {result['uid']}), /web/content/{att} 200 "
                f"{len(body)} B identical (sha256 {hashlib.sha256(body).hexdigest()[:12]}), deleted")

    # -- server checks ----------------------------------------------------------------
    def _conf(self) -> configparser.SectionProxy:
        cp = configparser.ConfigParser(interpolation=None, strict=False)
        if not cp.read(self.args.conf):
            raise Failure(f"cannot read {self.args.conf} (run as root)")
        return cp["options"] if cp.has_section("options") else cp[cp.default_section]

    def _main_pid(self) -> int:
        out = subprocess.run(["systemctl", "show", "-p", "MainPID", "--value", self.args.unit],
                             capture_output=True, text=True).stdout.strip()
        if not out.isdigit() or out == "0":
            raise Failure(f"{self.args.unit}.service has no main process (MainPID {out or '?'})")
        return int(out)

    def check_workers(self) -> str:
        conf = self._conf()
        workers = int(conf.get("workers", "0") or 0)
        cron = int(conf.get("max_cron_threads", "2") or 0)
        main = self._main_pid()
        if workers == 0:
            if process_state(main) in ("Z", "T", "t", None):
                raise Failure(f"main process {main} is not running")
            return f"threaded mode (workers = 0): main process {main} running"
        want = {"http": workers, "cron": cron, "gevent": 1}
        for attempt in range(3):  # an HTTP worker recycled (limit_request) is gone for a moment
            problems = self._worker_problems(main, want)
            if not problems:
                break
        if problems:
            raise Failure("; ".join(problems) + f" (odoo.conf: workers = {workers}, max_cron_threads = {cron})")
        return (f"http {workers}/{workers}, cron {cron}/{cron}, gevent 1/1 under main process {main}, "
                f"the same cron worker(s) over {self.args.settle:.0f} s")

    def _worker_problems(self, main: int, want: dict[str, int]) -> list[str]:
        """What is wrong with two samples of the main process' children, settle s apart."""
        first = classify_children(main)
        time.sleep(self.args.settle)
        second = classify_children(main)
        problems = []
        for role, n in want.items():
            for sample in (first, second):
                alive = [p for p, st in sample.get(role, []) if st not in ("Z", "T", "t", "X")]
                if len(alive) != n:
                    states = ", ".join(f"{p}:{st}" for p, st in sample.get(role, [])) or "none"
                    problems.append(f"{role} {len(alive)}/{n} running ({states})")
                    break
        cron_pids = ({p for p, _ in first.get("cron", [])}, {p for p, _ in second.get("cron", [])})
        if not problems and cron_pids[0] != cron_pids[1]:
            problems.append(f"cron workers replaced within {self.args.settle:.0f} s "
                            f"({sorted(cron_pids[0])} -> {sorted(cron_pids[1])}): they keep dying")
        return problems

    def check_cron(self) -> str:
        conf = self._conf()
        db = self.args.db or (conf.get("db_name") or "").split(",")[0].strip()
        if not db or db == "False":
            raise Failure("no database: give --db")
        sql = ("SELECT count(*), count(lastcall), "
               "COALESCE(extract(epoch FROM (now() AT TIME ZONE 'UTC') - max(lastcall))::bigint, -1), "
               f"count(*) FILTER (WHERE active AND nextcall < (now() AT TIME ZONE 'UTC') - interval '{CRON_OVERDUE_S} seconds') "
               "FROM ir_cron")
        deadline = time.monotonic() + self.args.cron_wait
        while True:
            r = subprocess.run(["runuser", "-u", self.args.db_user, "--", "psql", "-X", "-q", "-A", "-t",
                                "-d", db, "-c", sql], capture_output=True, text=True)
            if r.returncode != 0:
                raise Failure(f"psql as {self.args.db_user} on {db} failed: {r.stderr.strip()[:200]}")
            total, ran, age, overdue = (int(x) for x in r.stdout.strip().split("|"))
            if ran > 0 and overdue == 0:
                return (f"{ran}/{total} scheduled actions have run, the last {age} s ago; "
                        f"none overdue by more than {CRON_OVERDUE_S} s")
            if time.monotonic() >= deadline:
                if ran == 0:
                    raise Failure(f"no scheduled action has ever run (lastcall NULL for all {total}) "
                                  f"after waiting {self.args.cron_wait:.0f} s")
                raise Failure(f"{overdue} active scheduled action(s) overdue by more than {CRON_OVERDUE_S} s "
                              f"after waiting {self.args.cron_wait:.0f} s (the last run {age} s ago): no cron worker runs them")
            time.sleep(5)

    def check_journal(self) -> str:
        unit = self.args.unit
        inv = subprocess.run(["systemctl", "show", "-p", "InvocationID", "--value", unit],
                             capture_output=True, text=True).stdout.strip()
        if not inv:
            raise Failure(f"{unit}.service has no invocation (not started)")
        r = subprocess.run(["journalctl", "-q", "--no-pager", "-o", "cat", "-u", unit,
                            f"_SYSTEMD_INVOCATION_ID={inv}"], capture_output=True, text=True)
        if r.returncode != 0:
            raise Failure(f"journalctl failed: {r.stderr.strip()[:200]}")
        bad, refused, lines = journal_problems(r.stdout.splitlines())
        if bad:
            shown = " | ".join(line[:200] for line in bad[:5])
            raise Failure(f"{len(bad)} warning/error line(s) since the last start: {shown}")
        return (f"0 warnings or errors in {lines} lines since the last start"
                + (f" ({refused} refused login(s) not counted)" if refused else ""))


def journal_problems(lines: list[str]) -> tuple[list[str], int, int]:
    """(WARNING/ERROR/CRITICAL lines, refused-login warnings, line count) of Odoo's log."""
    bad, refused = [], 0
    for line in lines:
        m = LOG_LINE.match(line)
        if not m or m["level"] not in BAD_LEVELS:
            continue
        if m["level"] == "WARNING" and REFUSED_LOGIN.search(m["logger"]) and m["msg"].strip() == "Access Denied":
            refused += 1
            continue
        bad.append(line)
    return bad, refused, len(lines)


def process_state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def role_of(comm: str, cmdline: list[str], nice: int = 0) -> str | None:
    """Which Odoo process this is: Odoo names its workers with setproctitle ("odoo:
    WorkerHTTP <pid>", "odoo: WorkerCron <pid> <db>") when that module is installed and
    starts the evented process as `odoo-bin gevent ...`; the FAKE Odoo names them in comm
    (odoo:http, odoo:cron). setproctitle is not in Odoo's requirements.txt: in a venv
    install every worker is `python3 odoo-bin -c ...`, and the cron worker is the one that
    called os.nice(10)."""
    text = " ".join(cmdline)
    if "WorkerCron" in text or comm == "odoo:cron":
        return "cron"
    if "WorkerHTTP" in text or comm == "odoo:http":
        return "http"
    if "gevent" in cmdline[1:4] or comm == "odoo:gevent":
        return "gevent"
    if any(arg.endswith("odoo-bin") or arg == "odoo" or arg.endswith("/odoo") for arg in cmdline[:2]):
        return "cron" if nice > 0 else "http"
    return None


def classify_children(ppid: int, proc: str = "/proc") -> dict[str, list[tuple[int, str]]]:
    """{role: [(pid, state)]} of the direct children of ppid."""
    found: dict[str, list[tuple[int, str]]] = {}
    for entry in sorted((e for e in os.listdir(proc) if e.isdigit()), key=int):
        try:
            with open(f"{proc}/{entry}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) != ppid:
                continue
            with open(f"{proc}/{entry}/comm", encoding="utf-8", errors="replace") as f:
                comm = f.read().strip()
            with open(f"{proc}/{entry}/cmdline", "rb") as f:
                cmdline = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except (OSError, IndexError, ValueError):
            continue
        role = role_of(comm, cmdline, int(fields[16]) if len(fields) > 16 else 0)
        if role:
            found.setdefault(role, []).append((int(entry), fields[0]))
    return found


# --- command line ------------------------------------------------------------------------


def read_password(args: argparse.Namespace) -> str | None:
    """The administrator's password from a secret source: a file, stdin or the environment."""
    if args.password_file:
        with open(args.password_file, encoding="utf-8") as f:
            return f.read().rstrip("\r\n")
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return os.environ.get("ODOO_ADMIN_PASSWORD") or None


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="odoo-acceptance",
        description="Check a deployed Odoo as its operator would; one PASS/FAIL line per check, exit 1 on any failure.")
    p.add_argument("--url", help="the site, e.g. https://erp.example.com (HTTP checks)")
    p.add_argument("--host-header", help="Host header to send (default: the URL's host)")
    p.add_argument("--connect", help="address to connect to instead of the URL's host (e.g. 127.0.0.1 on the server)")
    p.add_argument("--insecure", action="store_true", help="do not verify the TLS certificate")
    p.add_argument("--db", default="", help="database name (default: odoo.conf's db_name on the server, else odoo)")
    p.add_argument("--login", default="admin", help="the administrator's login (adminLogin)")
    p.add_argument("--password-file", help="file holding the administrator's password (attachment check)")
    p.add_argument("--password-stdin", action="store_true", help="read the administrator's password from stdin")
    p.add_argument("--http", action="store_true", help="run the HTTP checks (needs --url)")
    p.add_argument("--server", action="store_true", help="run the server checks (on the server, as root)")
    p.add_argument("--no-attachment", action="store_true", help="leave out the attachment check (no password)")
    p.add_argument("--only", help="comma-separated checks to run, e.g. login_page,asset_bundle")
    p.add_argument("--conf", default="/etc/odoo/odoo.conf", help="odoo.conf (server checks)")
    p.add_argument("--unit", default="odoo", help="systemd unit of Odoo (server checks)")
    p.add_argument("--db-user", default="odoo", help="OS user that psql runs as (peer authentication)")
    p.add_argument("--cron-wait", type=float, default=150.0, help="seconds to wait for a scheduled action to run")
    p.add_argument("--settle", type=float, default=3.0, help="seconds between the two process samples")
    args = p.parse_args(argv)
    if not (args.http or args.server):
        p.error("choose --http, --server or both")
    if args.http and not args.url:
        p.error("--http needs --url")
    if args.password_file and args.password_stdin:
        p.error("--password-file and --password-stdin exclude each other")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        args.password = read_password(args) if args.http and not args.no_attachment else None
        site = Site(args.url, args.host_header, args.connect, args.insecure) if args.http else None
    except (OSError, ValueError) as e:
        print(f"odoo-acceptance: {e}", file=sys.stderr)
        return 2
    if args.http and not args.db:
        args.db = "odoo"
    names = [n for n in HTTP_CHECKS if args.http and not (n == "attachment" and args.no_attachment)]
    names += [n for n in SERVER_CHECKS if args.server]
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - set(HTTP_CHECKS + SERVER_CHECKS))
        if unknown:
            print(f"odoo-acceptance: unknown check(s) {', '.join(unknown)}; checks: "
                  f"{', '.join(HTTP_CHECKS + SERVER_CHECKS)}", file=sys.stderr)
            return 2
        names = [n for n in names if n in wanted]
    run = Run(args, site)
    failed = 0
    for name in names:
        try:
            figure, ok = getattr(run, f"check_{name}")(), True
        except Failure as e:
            figure, ok = str(e), False
        except (OSError, http.client.HTTPException, ValueError) as e:
            figure, ok = f"{type(e).__name__}: {e}", False
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'} {name}: {figure}", flush=True)
    print(f"odoo-acceptance: {len(names) - failed} passed, {failed} failed"
          + (f" ({site.url})" if site else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
