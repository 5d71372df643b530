"""The Nginx site on a real server: the test host provisioned by the step scripts, with
Debian's Nginx in front of the FAKE Odoo, reached from this machine as a client on the
internet would. Login rate limit, database manager, compression and headers first on
the plain-HTTP site (no domain); then the nginx step again with a domain, where only
the certificate authority is a stand-in, for unknown names and TLS.
"""

from __future__ import annotations

import gzip
import http.client
import json
import shlex
import socket
import ssl
import time

import pytest

from odoo_pulumi import steps
from tests.remote.test_steps_on_testhost import (  # noqa: F401 (fixtures)
    archive, render, run_all, run_step, settings_for, testhost,
)

pytestmark = pytest.mark.e2e

DOMAIN = "erp.testhost.example"

# STAND-IN for certbot (not certbot: there is no Let's Encrypt offline). It does what
# the CA checks for HTTP-01 (the token is served for the domain on port 80, through
# the ACME site) and then writes a certificate from a throwaway CA that the host trusts
# where certbot would.
CERTBOT_STAND_IN = r"""#!/bin/sh
# STAND-IN for certbot (odoo-pulumi test fixture): no Let's Encrypt offline.
set -eu
webroot="" domain=""
while [ $# -gt 0 ]; do
    case "$1" in -w) webroot=$2; shift ;; -d) domain=$2; shift ;; esac
    shift
done
token="stand-in-$$"
mkdir -p "$webroot/.well-known/acme-challenge"
echo "$token" >"$webroot/.well-known/acme-challenge/$token"
got="" i=0
while [ "$got" != "$token" ] && [ $i -lt 20 ]; do  # the CA asks seconds later: Nginx has reloaded
    sleep 0.5; i=$((i + 1))
    got=$(curl -s --max-time 5 -H "Host: $domain" "http://127.0.0.1/.well-known/acme-challenge/$token" || true)
done
rm -f "$webroot/.well-known/acme-challenge/$token"
[ "$got" = "$token" ] || { echo "stand-in certbot: challenge not served for $domain" >&2; exit 1; }
# A throwaway CA the host trusts (as it trusts Let's Encrypt), and a certificate from it.
ca=/var/lib/stand-in-ca live="/etc/letsencrypt/live/$domain"
mkdir -p "$ca" "$live"
[ -s "$ca/ca.crt" ] || openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
    -subj "/CN=odoo-pulumi stand-in CA" -keyout "$ca/ca.key" -out "$ca/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" 2>/dev/null
# The extensions a real CA's certificates carry: Python 3.13 verifies strictly (X509_STRICT).
printf 'subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n' "$domain" >"$ca/ext"
openssl req -newkey rsa:2048 -nodes -subj "/CN=$domain" -keyout "$live/privkey.pem" -out "$ca/req.csr" 2>/dev/null
openssl x509 -req -in "$ca/req.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial -days 2 \
    -extfile "$ca/ext" -out "$live/fullchain.pem" 2>/dev/null
cp "$ca/ca.crt" /usr/local/share/ca-certificates/odoo-pulumi-stand-in-ca.crt
update-ca-certificates >/dev/null 2>&1
echo "stand-in certbot: certificate for $domain"
"""


@pytest.fixture(scope="module")
def provisioned(testhost, archive):
    """The test host taken from bare to Odoo behind Nginx, once, without a domain."""
    s = settings_for(testhost, archive)
    sha = steps.file_sha256(archive)
    testhost.copy(archive, steps.archive_staging_path(s, sha))
    run_all(testhost, s, render(s, testhost.host, sha))
    return {"settings": s, "sha": sha}


def request(host: str, method: str, path: str, headers: dict | None = None, body: bytes | None = None,
            port: int = 80, sni: str | None = None) -> http.client.HTTPResponse:
    """One request from this machine; over TLS when sni is given (certificate not checked)."""
    conn = http.client.HTTPConnection(host, port, timeout=15)
    sock = socket.create_connection((host, port), timeout=15)
    if sni:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        sock = ctx.wrap_socket(sock, server_hostname=sni)
    conn.sock = sock
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for name, value in {"Host": sni or host, **(headers or {})}.items():
        conn.putheader(name, value)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    r = conn.getresponse()
    r.body = r.read()
    conn.close()
    return r


def duplicates(r: http.client.HTTPResponse) -> dict[str, int]:
    names = [n.lower() for n, _ in r.getheaders()]
    return {n: names.count(n) for n in set(names) if names.count(n) > 1}


def odoo_journal(testhost, since: str) -> str:
    return testhost.sudo(f"journalctl -u odoo --since {shlex.quote(since)} --no-pager -o cat")


def host_now(testhost) -> str:
    return testhost.sudo("date '+%Y-%m-%d %H:%M:%S'")


# --- the plain-HTTP site (no domain) ------------------------------------------------------

def test_sixth_failed_login_within_a_minute_is_429(testhost, provisioned):
    """Five wrong passwords from one client reach Odoo, which logs each with the client's
    real address (Nginx passes the address it saw); the sixth is answered 429 by Nginx."""
    since = host_now(testhost)
    codes, fake = [], []
    for i in range(6):
        r = request(testhost.host, "POST", "/web/session/authenticate",
                    headers={"Content-Type": "application/json", "X-Forwarded-For": "198.51.100.66"},
                    body=json.dumps({"params": {"db": provisioned["settings"].database, "login": f"mallory{i}",
                                               "password": "guess"}}).encode())
        codes.append(r.status)
        fake.append(r.getheader("X-Fake-Odoo"))
    assert codes == [200] * 5 + [429], codes
    assert fake == ["1"] * 5 + [None], fake
    time.sleep(1)
    journal = odoo_journal(testhost, since)
    client = testhost.run("echo $SSH_CLIENT").stdout.split()[0]
    for i in range(5):
        assert f"Login failed for login:mallory{i} from {client}" in journal, journal[-3000:]
    assert "mallory5" not in journal and "198.51.100.66" not in journal


def test_an_office_behind_one_address_logs_in(testhost, provisioned):
    """Twelve browsers behind one address (each with the session cookie Odoo gave it
    with the form) post the login form at the same moment: none is refused."""
    codes = [request(testhost.host, "POST", "/web/login", headers={"Cookie": f"session_id=office-{i:02d}"},
                     body=b"login=a&password=b").status for i in range(12)]
    assert codes == [200] * 12, codes


def test_the_server_itself_is_not_limited(testhost, provisioned):
    """The health step logs in from the server (admin/admin must be refused): never
    counted, however often `pulumi up` runs."""
    codes = testhost.sudo("for i in $(seq 8); do curl -s -o /dev/null -w '%{http_code} ' -X POST "
                          "-H 'Content-Type: application/json' -d '{}' "
                          "http://127.0.0.1/web/session/authenticate; done").split()
    assert codes == ["200"] * 8, codes


def test_database_manager_refused_by_nginx(testhost, provisioned):
    """/web/database/* never reaches Odoo: Nginx answers 403 itself, also behind a
    language prefix, and Odoo's journal never sees the request."""
    since = host_now(testhost)
    for method, path in (("GET", "/web/database/manager"), ("POST", "/web/database/drop"),
                         ("GET", "/fr/web/database/selector")):
        r = request(testhost.host, method, path, body=b"master_pwd=x&name=odoo" if method == "POST" else None)
        assert r.status == 403 and r.getheader("X-Fake-Odoo") is None, (path, r.status, r.getheaders())
    time.sleep(1)
    assert "/web/database" not in odoo_journal(testhost, since)


def test_javascript_compressed_and_headers_not_doubled(testhost, provisioned):
    """Odoo 19's .js (text/javascript) is gzipped; Odoo's own nosniff and Cache-Control
    come once; Nginx adds nosniff/X-Frame-Options only where Odoo sent none."""
    r = request(testhost.host, "GET", "/web/static/lib/luxon/luxon.js", headers={"Accept-Encoding": "gzip"})
    assert r.status == 200 and r.getheader("X-Fake-Odoo") == "1"
    assert r.getheader("Content-Encoding") == "gzip", r.getheaders()
    assert len(gzip.decompress(r.body)) > 5 * len(r.body)
    assert not duplicates(r), r.getheaders()
    assert r.getheader("Cache-Control") == "public, max-age=604800"
    login = request(testhost.host, "GET", "/web/login")
    assert not duplicates(login), login.getheaders()
    assert login.getheader("X-Frame-Options") == "SAMEORIGIN"
    health = request(testhost.host, "GET", "/web/health")
    assert not duplicates(health), health.getheaders()
    assert health.getheader("X-Content-Type-Options") == "nosniff"
    assert health.getheader("X-Frame-Options") == "SAMEORIGIN"
    assert health.getheader("Server") == "nginx"


# --- the same server with a domain: TLS, unknown names --------------------------------------

@pytest.fixture(scope="module")
def with_domain(testhost, archive, provisioned):
    """The nginx step again with a domain: certbot from the real package, only the CA
    replaced by a stand-in; the ACME site first, then the TLS site in its place."""
    s = settings_for(testhost, archive, domain=DOMAIN, letsencryptEmail="ops@testhost.example")
    r = testhost.run("sudo -n install -m 0755 /dev/stdin /usr/local/bin/certbot", stdin=CERTBOT_STAND_IN)
    assert r.returncode == 0, r.stderr
    scripts = render(s, testhost.host, provisioned["sha"])
    run = run_step(testhost, s, "nginx", scripts["nginx"])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "stand-in certbot: certificate" in run.stdout + run.stderr or "obtained a certificate" in run.stdout
    health = run_step(testhost, s, "health", scripts["health"])
    assert health.returncode == 0, health.stdout[-2000:] + health.stderr[-2000:]
    return {"settings": s, "nginx": run, "scripts": scripts}


def test_domain_site_replaces_the_acme_site(testhost, with_domain):
    """First TLS deploy: the ACME site answers the challenge, then the TLS site takes
    its place in one tested reload; a second run changes nothing."""
    out = with_domain["nginx"].stdout
    assert "obtained a certificate" in out and "disabled /etc/nginx/sites-enabled/odoo-acme" in out
    assert testhost.sudo("ls /etc/nginx/sites-enabled") == "odoo"
    again = run_step(testhost, with_domain["settings"], "nginx", with_domain["scripts"]["nginx"])
    assert again.returncode == 0 and again.changed == 0, again.stdout


def test_unknown_host_refused(testhost, with_domain):
    """Port 80 with another Host: the connection is closed without an answer (444); the
    domain gets its redirect. Over TLS another name gets no handshake."""
    with socket.create_connection((testhost.host, 80), timeout=10) as sock:
        sock.sendall(b"GET /web/login HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n")
        assert sock.recv(4096) == b""
    r = request(testhost.host, "GET", "/web/login", headers={"Host": DOMAIN})
    assert r.status == 301 and r.getheader("Location") == f"https://{DOMAIN}/web/login"
    with pytest.raises(ssl.SSLError, match="(?i)unrecognized.name"):
        request(testhost.host, "GET", "/web/health", port=443, sni="other.example")
    ok = request(testhost.host, "GET", "/web/health", port=443, sni=DOMAIN)
    assert ok.status == 200 and ok.getheader("X-Fake-Odoo") == "1"
    assert ok.getheader("Strict-Transport-Security", "").startswith("max-age=")


def test_tls_versions(testhost, with_domain):
    """TLS 1.3 served; a TLS 1.1 client refused at the handshake."""
    for version, expect in ((ssl.TLSVersion.TLSv1_3, "TLSv1.3"), (ssl.TLSVersion.TLSv1_2, "TLSv1.2"),
                            (ssl.TLSVersion.TLSv1_1, None)):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        ctx.minimum_version = ctx.maximum_version = version
        if version == ssl.TLSVersion.TLSv1_1:
            ctx.set_ciphers("ALL:@SECLEVEL=0")
        try:
            with ctx.wrap_socket(socket.create_connection((testhost.host, 443), timeout=10),
                                 server_hostname=DOMAIN) as conn:
                got = conn.version()
        except (ssl.SSLError, ConnectionError):
            got = None
        assert got == expect, (version, got)


def test_odoo_told_the_domain_not_the_clients_host(testhost, with_domain):
    """Odoo builds its URLs from X-Forwarded-Host (proxy_mode): it gets the domain, even
    when the client sends the name with a port or forges X-Forwarded-Host."""
    r = request(testhost.host, "GET", "/fake/headers", port=443, sni=DOMAIN,
                headers={"Host": f"{DOMAIN}:443", "X-Forwarded-Host": "evil.example"})
    seen = json.loads(r.body)
    assert seen["host"] == DOMAIN and seen["received"]["X-Forwarded-Host"] == DOMAIN
    assert seen["effective"]["url_root"] == f"https://{DOMAIN}/"
