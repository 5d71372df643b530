"""The load test's mechanics against a stub JSON-RPC server on loopback: it logs in,
runs the office mix with think time, measures only after the warm-up, stops by itself,
counts errors by kind, gives the verdict at the p95 target and draws the plot.
(The stub is a FAKE of the few Odoo routes the tool uses; the real thing is measured on
the test host and in docs/real-odoo.md.)"""

import json
import threading
import time
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from odoo_pulumi import loadtest


class StubOdoo(BaseHTTPRequestHandler):
    """FAKE: authenticate, call_kw (search_read, read, name_search), /web with a bundle."""

    protocol_version = "HTTP/1.1"
    delay = 0.0
    fail_name_search = False
    calls: list = []

    def log_message(self, *a):
        pass

    def _send(self, status, body, ctype="application/json", cookie=None):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if cookie:
            self.send_header("Set-Cookie", f"session_id={cookie}; Path=/; HttpOnly")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        type(self).calls.append(("GET", self.path, self.headers.get("Cookie")))
        if self.path == "/web/login":  # Odoo gives the login page a session cookie
            self._send(200, "<form></form>", "text/html", cookie="a" * 32)
        elif self.path == "/web":
            self._send(200, '<script src="/web/assets/abc/web.assets_web.min.js"></script>', "text/html")
        elif self.path.startswith("/web/assets/"):
            self._send(200, "x" * 5000, "text/javascript")
        else:
            self._send(404, "no")

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        p = req["params"]
        type(self).calls.append(("POST", self.path, self.headers.get("Cookie")))
        time.sleep(type(self).delay)
        if self.path == "/web/session/authenticate":
            ok = p.get("login") == "admin" and p.get("password") == "pw"
            body = {"result": {"uid": 2}} if ok else {"error": {"message": "Odoo Server Error",
                                                            "data": {"name": "odoo.exceptions.AccessDenied"}}}
            return self._send(200, json.dumps({"jsonrpc": "2.0", "id": req["id"], **body}), cookie="s" * 32 if ok else None)
        if self.headers.get("Cookie") != "session_id=" + "s" * 32:
            return self._send(200, json.dumps({"jsonrpc": "2.0", "id": req["id"], "error": {
                "message": "Odoo Session Expired", "data": {"name": "odoo.http.SessionExpiredException"}}}))
        method = p["method"]
        if method == "name_search" and type(self).fail_name_search:
            return self._send(200, json.dumps({"jsonrpc": "2.0", "id": req["id"], "error": {
                "message": "Odoo Server Error", "data": {"name": "odoo.exceptions.AccessError"}}}))
        if p["model"] == "product.template":
            return self._send(200, json.dumps({"jsonrpc": "2.0", "id": req["id"], "error": {
                "message": "Odoo Server Error", "data": {"name": "builtins.KeyError", "message": "product.template"}}}))
        result = {"search_read": [{"id": i, "display_name": f"P{i}"} for i in range(1, 30)],
                  "read": [{"id": 1}], "name_search": [[1, "P1"]]}[method]
        self._send(200, json.dumps({"jsonrpc": "2.0", "id": req["id"], "result": result}))


@pytest.fixture
def stub():
    StubOdoo.delay, StubOdoo.fail_name_search, StubOdoo.calls = 0.0, False, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubOdoo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def opts(url, **kw):
    base = dict(url=url, users=[4], duration=2.0, warmup=0.5, think=0.05, timeout=5, password="pw", seed=1)
    base.update(kw)
    return loadtest.Options(**base)


def test_percentile_nearest_rank():
    values = [float(i) for i in range(1, 101)]
    assert (loadtest.percentile(values, 50), loadtest.percentile(values, 95), loadtest.percentile(values, 99)) == (50, 95, 99)
    assert loadtest.percentile([3.0], 99) == 3.0


def test_runs_the_office_mix_and_stops_by_itself(stub):
    t0 = time.monotonic()
    r = loadtest.run_step(opts(stub), 4, log=lambda m: None)
    elapsed = time.monotonic() - t0
    assert 2.5 <= elapsed < 2.5 + 3, elapsed  # warm-up + duration, then it stops
    assert r.requests > 20 and r.requests_per_second == pytest.approx(r.requests / 2.0)
    assert {"partner_list", "partner_read", "name_search", "product_list", "assets"} <= set(r.by_action)
    assert r.errors == {} and r.holds and r.verdict.startswith("YES")
    assert r.p50 <= r.p95 <= r.p99 < 1
    # every call after the login carries the session cookie; each user logged in once
    logins = [c for c in StubOdoo.calls if c[1] == "/web/session/authenticate"]
    assert len(logins) == 4
    assert all(c[2] for c in StubOdoo.calls if c[1].startswith("/web/dataset/"))
    # no product module: the product list falls back to a model every database has
    assert any("/res.country/" in c[1] for c in StubOdoo.calls)


def test_errors_by_kind_and_a_failing_verdict(stub):
    StubOdoo.fail_name_search = True
    r = loadtest.run_step(opts(stub, duration=1.5), 4, log=lambda m: None)
    assert set(r.errors) == {"AccessError"} and r.errors["AccessError"] > 0
    assert not r.holds and "failed" in r.verdict


def test_slow_server_fails_the_p95_target(stub):
    StubOdoo.delay = 0.15
    r = loadtest.run_step(opts(stub, p95_target=0.1, duration=1.5), 3, log=lambda m: None)
    assert r.p95 >= 0.15 and not r.holds and "above the 0.1 s target" in r.verdict


def test_wrong_password_is_counted_not_fatal(stub):
    r = loadtest.run_step(opts(stub, password="nope", duration=1.0, think=0.1), 2, log=lambda m: None)
    assert set(r.errors) == {"AccessDenied"} and not r.holds


def test_each_user_logs_in_with_its_login_pages_cookie(stub):
    """As a browser: the login page first, then the login with its session cookie, so that
    Nginx's per-browser login limit (5, then 1 a minute) counts each user apart."""
    loadtest.run_step(opts(stub, duration=0.5, think=0.05), 6, log=lambda m: None)
    logins = [c for c in StubOdoo.calls if c[:2] == ("POST", "/web/session/authenticate")]
    assert len(logins) == 6
    assert all(cookie == "session_id=" + "a" * 32 for _, _, cookie in logins), logins


def test_users_stay_logged_in_across_steps_and_log_in_again_when_expired(stub):
    """Steps of 2, 4, 6 users with one Options log in 6 times, not 12 (Nginx allows one
    address 120 logins, then 1 a second: a run of 16..96 users logging in afresh at each
    step was answered 429 on a real server); a session Odoo ended is logged in again."""
    o = opts(stub, duration=0.5, warmup=0.2, think=0.05)
    for n in (2, 4, 6):
        r = loadtest.run_step(o, n, log=lambda m: None)
        assert r.errors == {}
    logins = [c for c in StubOdoo.calls if c[:2] == ("POST", "/web/session/authenticate")]
    assert len(logins) == 6 and sorted(o.sessions) == list(range(6))
    o.sessions[0] = "session_id=" + "x" * 32  # ended by Odoo (a restore, a password change)
    StubOdoo.calls = []
    loadtest.run_step(o, 1, log=lambda m: None)
    assert any(c[2] == "session_id=" + "x" * 32 for c in StubOdoo.calls)  # the kept session was tried
    relogins = [c for c in StubOdoo.calls if c[:2] == ("POST", "/web/session/authenticate")]
    assert len(relogins) == 1 and o.sessions[0] == "session_id=" + "s" * 32


def test_cli_refuses_a_wrong_password_before_any_step(stub, tmp_path, capsys, monkeypatch):
    """A refused login stops the run at once with what to fix, instead of retrying into
    Nginx's 429 for the whole duration."""
    monkeypatch.setenv("ODOO_LOADTEST_PASSWORD", "nope")
    t0 = time.monotonic()
    rc = loadtest.main(["--url", stub, "--users", "2,4", "--duration", "5", "--warmup", "1",
                        "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and time.monotonic() - t0 < 3
    assert "login 'admin' was refused (AccessDenied" in err and "--password-file" in err
    assert not (tmp_path / "report.json").exists()


def test_cli_steps_writes_report_and_plot(stub, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ODOO_LOADTEST_PASSWORD", "pw")
    rc = loadtest.main(["--url", stub, "--users", "2,4", "--duration", "1", "--warmup", "0.3", "--think", "0.05",
                        "--out", str(tmp_path), "--label", "stub", "--seed", "3"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "users   req/s" in out and "verdict:" in out
    data = json.loads((tmp_path / "report.json").read_text())
    assert [s["users"] for s in data["steps"]] == [2, 4]
    svg = ET.parse(tmp_path / "latency.svg").getroot()
    assert svg.tag.endswith("svg") and len([e for e in svg.iter() if e.tag.endswith("polyline")]) == 3


def test_bad_url_is_an_error(capsys):
    assert loadtest.main(["--url", "ftp://x", "--users", "1"]) == 2
    assert "--url must be http(s)" in capsys.readouterr().err
