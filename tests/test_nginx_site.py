"""The rendered Nginx site run by a real Nginx on this machine, in front of a STUB that
answers the way Odoo 19 does (the headers, the X-Accel-Redirect of x_sendfile), and
read by gixy. What a request sees: TLS versions and suites, unknown names, duplicate or
missing headers, compression, the login rate limit and the database manager.

The stub is not Odoo: every answer carries `X-Stub-Odoo: 1`, so a test can tell an
answer of Nginx's own from one that reached the application. Its headers are the facts
seen on a real Odoo 19.0 (docs/real-odoo.md): `X-Content-Type-Options: nosniff` and
`Cache-Control: public, max-age=604800` on static files, `text/javascript` for .js,
`X-Frame-Options: SAMEORIGIN` and `Cache-Control: no-cache` on the login page, none on
JSON, and for filestore files an empty answer with `X-Accel-Redirect`.
"""

from __future__ import annotations

import gzip
import http.client
import json
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from odoo_pulumi import render
from odoo_pulumi.settings import sizing_for
from tests.conftest import host_settings, stack_settings

pytestmark = pytest.mark.slow

NGINX = "/usr/sbin/nginx"
STATIC_JS = ("/* luxon stand-in */\n" + "export function f(x) { return x + 1; }\n" * 900).encode()
FILESTORE_FILE = "odoo/ab/abcdef0123456789"
FILESTORE_BYTES = b"%PDF-1.4 stand-in attachment\n" + b"0123456789abcdef" * 4096
BUNDLE_FILE = "odoo/cd/cdef0123456789ab"
BUNDLE_BYTES = ("/* web.assets_web.min.js stand-in */\n" + "var a=1;" * 5000).encode()


class StubOdoo(BaseHTTPRequestHandler):
    """STUB of Odoo 19's answers (not Odoo): only the headers and routes the site meets."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status, body=b"", headers=()):
        self.send_response(status)
        self.send_header("X-Stub-Odoo", "1")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.do_GET()

    def do_GET(self):
        path = self.path.split("?")[0]
        if path.startswith("/web/static/"):
            self._send(200, STATIC_JS, [("Content-Type", "text/javascript; charset=utf-8"),
                                        ("Cache-Control", "public, max-age=604800"),
                                        ("X-Content-Type-Options", "nosniff")])
        elif path == "/web/login":
            self._send(200, b"<html><form>login</form></html>\n" * 40,
                       [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-cache"),
                        ("X-Frame-Options", "SAMEORIGIN"),
                        ("Content-Security-Policy", "frame-ancestors 'self'")])
        elif path == "/web/content/42":
            self._send(200, b"", [("Content-Type", "application/pdf"),
                                  ("Content-Disposition", "inline; filename=a.pdf"),
                                  ("Cache-Control", "no-cache"), ("X-Content-Type-Options", "nosniff"),
                                  ("Content-Security-Policy", "default-src 'none'"),
                                  ("X-Accel-Redirect", f"/web/filestore/{FILESTORE_FILE}")])
        elif path.startswith("/web/assets/"):
            self._send(200, b"", [("Content-Type", "text/javascript; charset=utf-8"),
                                  ("Cache-Control", "public, max-age=31536000, immutable"),
                                  ("X-Content-Type-Options", "nosniff"),
                                  ("X-Accel-Redirect", f"/web/filestore/{BUNDLE_FILE}")])
        elif path == "/fake/headers":
            self._send(200, json.dumps(dict(self.headers.items())).encode(),
                       [("Content-Type", "application/json")])
        else:  # /web/health, /web/database/..., anything: JSON without security headers
            self._send(200, b'{"status": "pass"}', [("Content-Type", "application/json")])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def localise(site: str, ports: dict[str, int], paths: dict[str, str]) -> str:
    """The site on loopback ports and scratch paths; everything else byte for byte."""
    site = re.sub(r"^\s*listen \[::\]:.*\n", "", site, flags=re.M)
    site = re.sub(r"listen 80\b", f"listen 127.0.0.1:{ports['http']}", site)
    site = re.sub(r"listen 443\b", f"listen 127.0.0.1:{ports['https']}", site)
    site = site.replace("127.0.0.1:8069", f"127.0.0.1:{ports['odoo']}")
    site = site.replace("127.0.0.1:8072", f"127.0.0.1:{ports['odoo']}")
    for old, new in paths.items():
        site = site.replace(old, new)
    return site


# What Ubuntu's and Debian's own /etc/nginx/nginx.conf set in `http {}` around the
# sites: the site has to win over these. Then the harness's own line: Nginx listens on
# loopback, and a request says which client address it stands for (realip module).
DISTRO_HTTP = """
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
    gzip on;
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Test-Client;
"""
CLIENT = "198.51.100.10"  # a client on the internet (TEST-NET-2)


class RunningNginx:
    def __init__(self, root: Path, ports: dict[str, int], domain: str | None):
        self.root, self.ports, self.domain = root, ports, domain

    def request(self, method: str, path: str, host: str | None = None, tls: bool = True,
                headers: dict | None = None, body: bytes | None = None,
                sni: str | None = None, client: str | None = CLIENT) -> http.client.HTTPResponse:
        """One request on a new connection to loopback, with the given Host (and, over
        TLS, the SNI name: the Host unless told otherwise), as if from `client` (None:
        from the server itself)."""
        host = host or self.domain
        port = self.ports["https" if tls else "http"]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        conn.sock = client_context().wrap_socket(sock, server_hostname=sni or host.split(":")[0]) if tls else sock
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host)
        if client:  # the harness's nginx.conf takes the client address from this header
            conn.putheader("X-Test-Client", client)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        response.body = response.read()
        conn.close()
        return response


def client_context(sni: str | None = None, version: ssl.TLSVersion | None = None,
                   ciphers: str | None = None) -> ssl.SSLContext:
    """A client that does not check the throwaway certificate; optionally pinned to one
    TLS version and a cipher list (security level 0, so that an old protocol is offered
    for real and any refusal is the server's)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


def throwaway_cert(folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
                    "-keyout", str(folder / "privkey.pem"), "-out", str(folder / "fullchain.pem")],
                   check=True, capture_output=True)


def start_nginx(root: Path, site: str, extra_http: str = "") -> subprocess.Popen:
    (root / "site.conf").write_text(site)
    (root / "nginx.conf").write_text(
        f"pid {root}/nginx.pid;\nerror_log {root}/error.log warn;\nworker_processes 1;\n"
        f"events {{ worker_connections 256; }}\n"
        f"http {{\n    access_log off;{DISTRO_HTTP}{extra_http}\n    include {root}/site.conf;\n}}\n")
    test = subprocess.run([NGINX, "-t", "-c", str(root / "nginx.conf"), "-p", str(root)],
                          capture_output=True, text=True)
    assert test.returncode == 0 and "[warn]" not in test.stderr, test.stderr
    proc = subprocess.Popen([NGINX, "-c", str(root / "nginx.conf"), "-p", str(root), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return proc


def wait_port(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nginx does not listen on {port}")


@pytest.fixture(scope="module")
def stub_odoo():
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubOdoo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def run_site(s, tls: bool, stub_port: int, edit=lambda site: site):
    """Render, localise and start the site; yield a RunningNginx, stop it after."""
    if not Path(NGINX).exists():
        pytest.fail("nginx is not installed: .ci/run installs it (apt)")
    root = Path(tempfile.mkdtemp(prefix="odoo-pulumi-nginx-"))
    root.chmod(0o755)  # the workers run as nobody
    filestore = root / "filestore"
    for rel, data in ((FILESTORE_FILE, FILESTORE_BYTES), (BUNDLE_FILE, BUNDLE_BYTES)):
        (filestore / rel).parent.mkdir(parents=True, exist_ok=True)
        (filestore / rel).write_bytes(data)
    for p in [filestore, *filestore.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    ports = {"http": free_port(), "https": free_port(), "odoo": stub_port}
    paths = {"/var/lib/odoo/filestore/": f"{filestore}/", render.ACME_ROOT: str(root / "acme")}
    if s.domain:
        throwaway_cert(root / "live", s.domain)
        paths[f"/etc/letsencrypt/live/{s.domain}"] = str(root / "live")
    site = edit(localise(render.render_nginx_site(s, sizing_for(s), tls=tls), ports, paths))
    proc = start_nginx(root, site)
    try:
        wait_port(ports["https"] if tls else ports["http"], proc)
        yield RunningNginx(root, ports, s.domain)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_site(stub_odoo):
    yield from run_site(stack_settings("small"), True, stub_odoo)


@pytest.fixture(scope="module")
def plain_site(stub_odoo):
    yield from run_site(host_settings(), False, stub_odoo)


def tls_handshake(site: RunningNginx, sni: str, **client) -> str:
    """The negotiated protocol, or the error that ended the handshake."""
    raw = socket.create_connection(("127.0.0.1", site.ports["https"]), timeout=10)
    try:
        with client_context(**client).wrap_socket(raw, server_hostname=sni) as conn:
            return conn.version()
    except (ssl.SSLError, ConnectionError) as e:
        return f"refused: {e}"
    finally:
        raw.close()


# --- TLS --------------------------------------------------------------------------------

def test_tls13_served_tls11_refused(tls_site):
    """A TLS 1.3 client gets the site; a TLS 1.1 client is refused at the handshake,
    although the distribution's nginx.conf around the site still lists TLSv1.1."""
    assert tls_handshake(tls_site, tls_site.domain, version=ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    r = tls_site.request("GET", "/web/health")
    assert r.status == 200 and r.getheader("X-Stub-Odoo") == "1"
    old = tls_handshake(tls_site, tls_site.domain, version=ssl.TLSVersion.TLSv1_1, ciphers="ALL:@SECLEVEL=0")
    assert old.startswith("refused"), old


def test_tls11_client_works_where_allowed(tmp_path):
    """Control for the test above: the same TLS 1.1 client completes a handshake with an
    Nginx that allows TLS 1.1, so the refusal above is the site's doing."""
    root = Path(tempfile.mkdtemp(prefix="odoo-pulumi-nginx-"))
    try:
        throwaway_cert(root, "old.example")
        port = free_port()
        site = (f"server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {root}/fullchain.pem; "
                f"ssl_certificate_key {root}/privkey.pem; ssl_protocols TLSv1.1; "
                f"ssl_ciphers ALL:@SECLEVEL=0; return 204; }}\n")
        proc = start_nginx(root, site)
        try:
            wait_port(port, proc)
            fake = RunningNginx(root, {"https": port}, "old.example")
            assert tls_handshake(fake, "old.example", version=ssl.TLSVersion.TLSv1_1,
                                 ciphers="ALL:@SECLEVEL=0") == "TLSv1.1"
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_tls11_refused_by_the_protocol_list_alone(stub_odoo):
    """OpenSSL 3's default security level and the AEAD-only suites refuse TLS 1.1 too;
    with those two opened up (every suite, level 0), ssl_protocols still refuses it."""
    s = stack_settings("small")
    opened = lambda site: re.sub(r"ssl_ciphers [^;]+;", "ssl_ciphers ALL:@SECLEVEL=0;", site)
    for site in run_site(s, True, stub_odoo, edit=opened):
        old = tls_handshake(site, site.domain, version=ssl.TLSVersion.TLSv1_1, ciphers="ALL:@SECLEVEL=0")
        assert old.startswith("refused"), old
        assert tls_handshake(site, site.domain, version=ssl.TLSVersion.TLSv1_2) == "TLSv1.2"


def test_tls12_only_forward_secret_aead_suites(tls_site):
    """TLS 1.2 with an ECDHE-GCM suite is served; the CBC and static-RSA suites that
    Nginx's default list (HIGH:!aNULL:!MD5) would accept are refused."""
    ok = tls_handshake(tls_site, tls_site.domain, version=ssl.TLSVersion.TLSv1_2,
                       ciphers="ECDHE-RSA-AES128-GCM-SHA256")
    assert ok == "TLSv1.2"
    for weak in ("AES128-SHA", "ECDHE-RSA-AES128-SHA", "AES256-GCM-SHA384", "ECDHE-RSA-AES256-SHA384"):
        got = tls_handshake(tls_site, tls_site.domain, version=ssl.TLSVersion.TLSv1_2, ciphers=weak)
        assert got.startswith("refused"), (weak, got)


def test_unknown_sni_refused_at_handshake(tls_site):
    """Only the configured name gets a TLS handshake (ssl_reject_handshake)."""
    assert tls_handshake(tls_site, tls_site.domain) == "TLSv1.3"
    got = tls_handshake(tls_site, "other.example")
    assert got.startswith("refused") and "UNRECOGNIZED_NAME" in got.upper(), got


def test_unknown_host_over_http_gets_no_answer(tls_site):
    """Port 80: another Host (a scan by address, a forged name) gets the connection
    closed without a byte (444); the configured name gets its redirect to HTTPS."""
    with socket.create_connection(("127.0.0.1", tls_site.ports["http"]), timeout=10) as sock:
        sock.sendall(b"GET /web/login HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n")
        assert sock.recv(4096) == b""
    r = tls_site.request("GET", "/web/login?x=1", tls=False)
    assert r.status == 301 and r.getheader("Location") == f"https://{tls_site.domain}/web/login?x=1"


def test_unknown_host_inside_a_tls_connection_misdirected(tls_site):
    """A request for another name on a connection made for the domain is answered 421,
    never passed to Odoo."""
    r = tls_site.request("GET", "/web/health", host="other.example", sni=tls_site.domain)
    assert r.status == 421 and r.getheader("X-Stub-Odoo") is None


# --- What Odoo is told ------------------------------------------------------------------

def test_odoo_gets_the_domain_and_the_real_client(tls_site):
    """Host and X-Forwarded-Host are the configured name even when the client sends it
    with a port; a forged X-Forwarded-For is replaced by the address Nginx saw."""
    r = tls_site.request("GET", "/fake/headers", host=f"{tls_site.domain}:443",
                         headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Host": "evil.example"})
    seen = json.loads(r.body)
    assert seen["Host"] == tls_site.domain and seen["X-Forwarded-Host"] == tls_site.domain
    assert seen["X-Forwarded-For"] == CLIENT and seen["X-Real-IP"] == CLIENT
    assert seen["X-Forwarded-Proto"] == "https"


# --- Headers ----------------------------------------------------------------------------

def header_counts(r: http.client.HTTPResponse) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name, _ in r.getheaders():
        counts[name.lower()] = counts.get(name.lower(), 0) + 1
    return counts


def assert_no_duplicates(r: http.client.HTTPResponse) -> None:
    dup = {k: v for k, v in header_counts(r).items() if v > 1}
    assert not dup, (dup, r.getheaders())


def test_static_file_keeps_odoos_headers_once_and_is_compressed(tls_site):
    """Odoo's nosniff and Cache-Control on a static .js are passed once, not doubled;
    text/javascript (Odoo 19's type for .js) is gzipped."""
    r = tls_site.request("GET", "/web/static/lib/luxon/luxon.js", headers={"Accept-Encoding": "gzip"})
    assert r.status == 200 and r.getheader("X-Stub-Odoo") == "1"
    assert_no_duplicates(r)
    assert r.getheader("Cache-Control") == "public, max-age=604800"
    assert r.getheader("X-Content-Type-Options") == "nosniff"
    assert r.getheader("Content-Encoding") == "gzip"
    assert gzip.decompress(r.body) == STATIC_JS and len(r.body) < len(STATIC_JS) / 5


def test_login_page_keeps_odoos_frame_options(tls_site):
    """Odoo sends X-Frame-Options on its pages: Nginx adds none of its own."""
    r = tls_site.request("GET", "/web/login")
    assert_no_duplicates(r)
    assert r.getheader("X-Frame-Options") == "SAMEORIGIN"
    assert r.getheader("Strict-Transport-Security", "").startswith("max-age=")


def test_headers_added_where_odoo_sends_none(tls_site):
    """JSON answers carry none of Odoo's security headers: Nginx adds them, once."""
    r = tls_site.request("GET", "/web/health")
    assert_no_duplicates(r)
    assert r.getheader("X-Content-Type-Options") == "nosniff"
    assert r.getheader("X-Frame-Options") == "SAMEORIGIN"
    assert r.getheader("Referrer-Policy") == "strict-origin-when-cross-origin"
    assert r.getheader("Server") == "nginx"


def test_filestore_file_has_security_headers(tls_site):
    """x_sendfile: Odoo answers with X-Accel-Redirect and Nginx sends the file from the
    internal location. Nginx drops Odoo's nosniff and CSP across that redirect, so the
    location must set them; Odoo's Content-Type and Cache-Control come through once."""
    r = tls_site.request("GET", "/web/content/42")
    assert r.status == 200 and r.body == FILESTORE_BYTES
    assert_no_duplicates(r)
    assert r.getheader("Content-Type") == "application/pdf"
    assert r.getheader("Content-Disposition") == "inline; filename=a.pdf"
    assert r.getheader("X-Content-Type-Options") == "nosniff"
    assert r.getheader("Content-Security-Policy") == "default-src 'none'"
    assert r.getheader("X-Frame-Options") == "SAMEORIGIN"
    assert r.getheader("Strict-Transport-Security", "").startswith("max-age=")
    assert r.getheader("X-Accel-Redirect") is None


def test_asset_bundle_from_filestore_compressed_with_one_cache_control(tls_site):
    r = tls_site.request("GET", "/web/assets/1/web.assets_web.min.js", headers={"Accept-Encoding": "gzip"})
    assert r.status == 200
    assert_no_duplicates(r)
    assert r.getheader("Cache-Control") == "public, max-age=31536000, immutable"
    assert r.getheader("Content-Encoding") == "gzip" and gzip.decompress(r.body) == BUNDLE_BYTES


def test_filestore_not_reachable_from_outside(tls_site):
    """The internal location serves X-Accel-Redirect only, never a direct request."""
    r = tls_site.request("GET", f"/web/filestore/{FILESTORE_FILE}")
    assert r.status == 404 and r.body != FILESTORE_BYTES


# --- Database manager and logins --------------------------------------------------------

@pytest.mark.parametrize("method,path", [("GET", "/web/database/manager"), ("POST", "/web/database/drop"),
                                         ("GET", "/fr/web/database/selector"), ("GET", "/web/database")])
def test_database_manager_refused_by_nginx(tls_site, method, path):
    r = tls_site.request(method, path, body=b"master_pwd=x&name=odoo" if method == "POST" else None)
    assert r.status == 403 and r.getheader("X-Stub-Odoo") is None


def test_sixth_login_in_a_row_gets_429(tls_site):
    """One client (no cookie, as a script) posting wrong passwords: five reach Odoo,
    the sixth within the minute is answered 429 by Nginx. GETs of the form are free."""
    for _ in range(8):
        assert tls_site.request("GET", "/web/login").status == 200
    codes = [tls_site.request("POST", "/web/session/authenticate", body=b'{"params": {}}').status
             for _ in range(6)]
    assert codes == [200] * 5 + [429], codes


def test_an_office_behind_one_address_is_not_limited(tls_site):
    """Twelve people behind one NAT address, each with the session cookie their browser
    got with the form, log in at the same moment: nobody is refused."""
    codes = [tls_site.request("POST", "/web/login", headers={"Cookie": f"session_id=office{i:02d}x"},
                              body=b"login=a&password=b").status for i in range(12)]
    assert codes == [200] * 12, codes


def test_one_address_is_limited_even_with_fresh_cookies(plain_site):
    """A client that forges a new cookie for each attempt meets the per-address limit:
    120 at once, then about one a second."""
    codes = [plain_site.request("POST", "/fr/web/login", tls=False, host="203.0.113.1", client="203.0.113.50",
                                headers={"Cookie": f"session_id=forged{i}"}, body=b"login=a&password=b").status
             for i in range(135)]
    assert codes[:120] == [200] * 120
    assert 429 in codes[120:], codes[120:]


def test_the_server_itself_is_not_limited(tls_site):
    """The health step and local monitoring log in from the server: never counted."""
    codes = [tls_site.request("POST", "/web/session/authenticate", client=None, body=b'{"params": {}}').status
             for _ in range(12)]
    assert codes == [200] * 12, codes


# --- gixy -------------------------------------------------------------------------------

def gixy_findings(site: str, tmp: Path) -> list[dict]:
    (tmp / "site.conf").write_text(site)
    (tmp / "nginx.conf").write_text(f"events {{}}\nhttp {{\n    include {tmp}/site.conf;\n}}\n")
    r = subprocess.run([sys.executable, "-m", "gixy", "-f", "json", str(tmp / "nginx.conf")],
                       capture_output=True, text=True)
    assert r.stdout.strip().startswith("["), r.stdout + r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("variant", ["small-tls", "small-acme", "large-tls", "host"])
def test_gixy_finds_nothing(variant, tmp_path):
    """gixy (gixy-ng from PyPI) on every variant of the site: zero findings, except
    those in GIXY_ACCEPTED with their reason."""
    if variant == "host":
        s, tls = host_settings(), False
    else:
        stack, kind = variant.split("-")
        s, tls = stack_settings(stack), kind == "tls"
    site = render.render_nginx_site(s, sizing_for(s), tls=tls)
    findings = gixy_findings(site, tmp_path)
    assert findings == [], json.dumps(findings, indent=1)


def test_gixy_catches_the_old_mistakes(tmp_path):
    """gixy bites: the filestore location of before (`location /web/filestore` with an
    alias: /web/filestore../x escapes it), $http_host passed as Host and server_tokens
    left on are each reported."""
    s = stack_settings("small")
    site = render.render_nginx_site(s, sizing_for(s), tls=True)
    broken = (site.replace("location /web/filestore/ {", "location /web/filestore {")
                  .replace(f"proxy_set_header Host {s.domain};", "proxy_set_header Host $http_host;")
                  .replace("server_tokens off;", "server_tokens on;"))
    plugins = {f["plugin"] for f in gixy_findings(broken, tmp_path)}
    assert {"alias_traversal", "host_spoofing", "version_disclosure"} <= plugins, plugins
