"""Load test: does this server hold N office users at a p95 below the target?

`python -m odoo_pulumi.loadtest --url https://erp.example.com --users 8,16,32` (or
`make loadtest URL=... USERS=8,16,32`) simulates N users of Odoo's web client through
its JSON-RPC routes: each logs in once (`/web/session/authenticate`), then works like
an office user with a think time between actions (open the partner list, read one
partner, type in a search box, open a product list, load the web client's asset
bundle). Each step runs a warm-up (not counted), then a fixed measured duration, then
stops by itself. It reports p50/p95/p99 latency, requests per second and errors by kind
for each N, the server's CPU and the Odoo processes' memory sampled over SSH
(`--ssh`), and a verdict against `--p95-target` (default 1 s). With several N it also
writes an SVG plot of latency against users (`--out`).

`--export` runs a slow request (every partner with every field, again and again) beside
the users: the workers mode must keep the other users under the target.

Standard library only (threads + http.client): the load is a few requests per second
per user, far below what one Python process can generate, and the tool must run
wherever the operator is. Point it only at servers you run.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import math
import os
import random
import re
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_THINK_S = 3.0
DEFAULT_P95_TARGET_S = 1.0
DEFAULT_MAX_ERROR_RATE = 0.01
PARTNER_FIELDS = ["display_name", "email", "phone", "city", "country_id", "company_type"]
PRODUCT_FIELDS = ["display_name", "default_code", "list_price", "type"]
FALLBACK_PRODUCT_MODEL = "res.country"  # present in every database (base), as big as a short product list
# The office mix: (action, weight). A user picks one per think time.
MIX = (("partner_list", 3), ("partner_read", 2), ("name_search", 2), ("product_list", 2), ("assets", 1))
SEARCH_TERMS = ("a", "an", "ma", "jo", "de", "sa", "li", "co", "be", "mi")
_ASSET_URL = re.compile(r"""(/web/assets/[^"'\s<>]+\.(?:js|css))""")


# --- results --------------------------------------------------------------------------------


@dataclass
class Sample:
    action: str
    start: float
    latency: float
    error: str | None = None  # None: success; else the kind (HTTP 502, AccessDenied, timeout, ...)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class ServerSample:
    t: float
    cpu_percent: float | None
    odoo_processes: int
    odoo_rss_mib: float
    odoo_max_rss_mib: float


@dataclass
class StepResult:
    users: int
    duration: float
    requests: int
    errors: dict[str, int]
    p50: float | None
    p95: float | None
    p99: float | None
    requests_per_second: float
    by_action: dict[str, dict[str, float]]
    server: dict[str, float | None] = field(default_factory=dict)
    export: dict[str, float | int] = field(default_factory=dict)
    holds: bool = False
    verdict: str = ""

    @property
    def error_rate(self) -> float:
        return sum(self.errors.values()) / self.requests if self.requests else 1.0


def summarise(users: int, samples: list[Sample], duration: float, p95_target: float,
              max_error_rate: float) -> StepResult:
    """The figures and the verdict of one step from its measured samples."""
    ok = [s.latency for s in samples if s.error is None]
    errors: dict[str, int] = {}
    for s in samples:
        if s.error is not None:
            errors[s.error] = errors.get(s.error, 0) + 1
    by_action = {}
    for action in sorted({s.action for s in samples}):
        lat = [s.latency for s in samples if s.action == action and s.error is None]
        n = sum(1 for s in samples if s.action == action)
        by_action[action] = {"requests": n, "errors": n - len(lat),
                             "p50": percentile(lat, 50) if lat else None,
                             "p95": percentile(lat, 95) if lat else None}
    r = StepResult(
        users=users, duration=duration, requests=len(samples), errors=errors,
        p50=percentile(ok, 50) if ok else None, p95=percentile(ok, 95) if ok else None,
        p99=percentile(ok, 99) if ok else None,
        requests_per_second=len(samples) / duration if duration > 0 else 0.0, by_action=by_action,
    )
    if not samples:
        r.holds, r.verdict = False, f"NO: no request completed in {duration:.0f} s"
    elif r.p95 is None or r.p95 > p95_target:
        r.holds = False
        r.verdict = (f"NO: p95 {_s(r.p95)} above the {p95_target:g} s target" if r.p95 is not None
                     else "NO: every request failed")
    elif r.error_rate > max_error_rate:
        r.holds, r.verdict = False, f"NO: {r.error_rate:.1%} of requests failed (limit {max_error_rate:.0%})"
    else:
        r.holds, r.verdict = True, f"YES: p95 {_s(r.p95)} <= {p95_target:g} s, {r.error_rate:.1%} errors"
    return r


def _s(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f} s"


# --- the HTTP client of one simulated user ------------------------------------------------------


class OdooError(Exception):
    """A failed request, with the kind it is counted under."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


class Session:
    """One browser: a keep-alive connection, the session cookie, JSON-RPC calls."""

    def __init__(self, url: str, timeout: float, verify_tls: bool = True):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--url must be http(s)://host[:port], not {url!r}")
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.base = parts.path.rstrip("/")
        self.timeout = timeout
        self.context = None if verify_tls else ssl._create_unverified_context()
        self.cookie = ""
        self.conn: http.client.HTTPConnection | None = None
        self._id = 0

    def _connect(self) -> http.client.HTTPConnection:
        if self.conn is None:
            if self.scheme == "https":
                self.conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                        context=self.context)
            else:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        hdrs = {"User-Agent": "odoo-pulumi-loadtest", "Accept-Encoding": "gzip"}
        if self.cookie:
            hdrs["Cookie"] = self.cookie
        hdrs.update(headers or {})
        for attempt in (0, 1):  # a keep-alive connection the server closed: reconnect once
            conn = self._connect()
            try:
                conn.request(method, self.base + path, body=body, headers=hdrs)
                resp = conn.getresponse()
                data = resp.read()
                break
            except TimeoutError as exc:
                self.close()
                raise OdooError("timeout", str(exc)) from None
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if attempt:
                    raise OdooError("connection reset", str(exc)) from None
            except OSError as exc:
                self.close()
                raise OdooError("connection error", str(exc)) from None
        if resp.getheader("Connection", "").lower() == "close":
            self.close()
        if resp.getheader("Content-Encoding", "") == "gzip":
            data = gzip.decompress(data)
        for value in resp.headers.get_all("Set-Cookie") or []:
            m = re.match(r"\s*session_id=([^;]*)", value)
            if m:
                self.cookie = f"session_id={m.group(1)}"
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data

    def rpc(self, path: str, params: dict) -> object:
        """A JSON-RPC call as the web client makes it; Odoo's errors by their name."""
        self._id += 1
        body = json.dumps({"jsonrpc": "2.0", "method": "call", "params": params, "id": self._id}).encode()
        status, _, data = self.request("POST", path, body, {"Content-Type": "application/json"})
        if status != 200:
            raise OdooError(f"HTTP {status}")
        try:
            answer = json.loads(data)
        except ValueError:
            raise OdooError("not JSON") from None
        if "error" in answer:
            err = answer["error"] or {}
            name = (err.get("data") or {}).get("name") or err.get("message") or "error"
            raise OdooError(name.rsplit(".", 1)[-1], (err.get("data") or {}).get("message", ""))
        return answer.get("result")

    def call_kw(self, model: str, method: str, args: list, kwargs: dict | None = None) -> object:
        return self.rpc(f"/web/dataset/call_kw/{model}/{method}",
                        {"model": model, "method": method, "args": args, "kwargs": kwargs or {}})


def open_login_page(session: Session) -> None:
    """What a browser does before it logs in: the login page gives it Odoo's session cookie.
    Nginx's login limit counts each browser by it (5 tries, then 1 a minute); without it every
    simulated user shares one allowance per address and the sixth login is refused 429."""
    try:
        session.request("GET", "/web/login")
    except OdooError:
        pass


def check_login(opts: "Options") -> str | None:
    """One login before any step: a refused password would otherwise turn into a run of
    retries that Nginx's login limit answers 429. Returns the reason it failed, or None."""
    session = Session(opts.url, opts.timeout, opts.verify_tls)
    open_login_page(session)
    try:
        session.rpc("/web/session/authenticate", {"login": opts.login, "password": opts.password,
                                                  **({"db": opts.db} if opts.db else {})})
    except OdooError as exc:
        return str(exc)
    finally:
        session.close()
    return None


# --- the test --------------------------------------------------------------------------------


@dataclass
class Options:
    url: str
    users: list[int]
    duration: float = 60.0
    warmup: float = 10.0
    think: float = DEFAULT_THINK_S
    timeout: float = 30.0
    db: str | None = "odoo"  # odoo-pulumi's default `database`; Odoo 19 needs it to log in
    login: str = "admin"
    password: str = "admin"
    p95_target: float = DEFAULT_P95_TARGET_S
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE
    product_model: str = "product.template"
    export: bool = False
    ssh: str | None = None  # user@host[:port] of the server, for CPU and memory samples
    ssh_key: str | None = None
    ssh_options: list[str] = field(default_factory=list)
    verify_tls: bool = True
    seed: int | None = None
    label: str = ""
    # Session cookies by simulated user, kept across steps (and, shared, across the
    # configurations of scripts/loadtest-configs: Odoo keeps sessions on disk over a
    # restart): people stay logged in all day, and a run of 16, 32, 64 users then logs in
    # 64 times, not 112, within Nginx's per-address login allowance (120, then 1 a second).
    sessions: dict[int, str] = field(default_factory=dict)


class Shared:
    """What users discover once and share: the asset bundle, the product model."""

    def __init__(self, opts: Options):
        self.lock = threading.Lock()
        self.assets: list[str] | None = None
        self.product_model: str | None = None
        self.opts = opts

    def asset_urls(self, session: Session) -> list[str]:
        with self.lock:
            if self.assets is None:
                found: list[str] = []
                for page in ("/web", "/web/login"):  # the web client's bundles, else the login page's
                    try:
                        status, _, body = session.request("GET", page)
                    except OdooError:
                        continue
                    if status == 200:
                        found = sorted(set(_ASSET_URL.findall(body.decode("utf-8", "replace"))))
                    if found:
                        break
                self.assets = found
            return self.assets

    def product(self, session: Session) -> str:
        with self.lock:
            if self.product_model is None:
                try:
                    session.call_kw(self.opts.product_model, "search_read", [[]],
                                    {"fields": ["display_name"], "limit": 1})
                    self.product_model = self.opts.product_model
                except OdooError:  # not installed (a base-only database): a list of the same size
                    self.product_model = FALLBACK_PRODUCT_MODEL
            return self.product_model


def _log_in(n: int, opts: Options, session: Session, timed, stop: threading.Event, rng: random.Random) -> bool:
    """User n's session: the one kept from an earlier step, else a login (login page
    first, like a browser). A refused login is retried with a growing pause (up to a
    minute), not at once: Nginx's login limit refills one a second. False once stopped."""
    if n in opts.sessions:
        session.cookie = opts.sessions[n]
        return True
    params = {"login": opts.login, "password": opts.password}
    if opts.db:
        params["db"] = opts.db
    pause = opts.think * 2
    open_login_page(session)
    while not stop.is_set():
        if timed("login", lambda: session.rpc("/web/session/authenticate", params)) is not None:
            opts.sessions[n] = session.cookie
            return True
        session.close()
        if stop.wait(rng.uniform(0.5, 1.5) * pause):
            return False
        pause = min(60.0, pause * 2)
    return False


def _user(n: int, opts: Options, shared: Shared, samples: list[Sample], stop: threading.Event,
          rng: random.Random) -> None:
    """One simulated office user until `stop`."""
    session = Session(opts.url, opts.timeout, opts.verify_tls)
    partner_ids: list[int] = []

    def timed(action: str, fn) -> object:
        t0 = time.monotonic()
        try:
            result = fn()
            samples.append(Sample(action, t0, time.monotonic() - t0))
            return result
        except OdooError as exc:
            samples.append(Sample(action, t0, time.monotonic() - t0, exc.kind))
            if exc.kind == "SessionExpiredException":
                opts.sessions.pop(n, None)
            return None

    # Users arrive spread over the first think time, as in an office in the morning.
    if stop.wait(rng.uniform(0, opts.think)):
        return
    if not _log_in(n, opts, session, timed, stop, rng):
        return
    while not stop.is_set():
        if stop.wait(rng.uniform(0.5, 1.5) * opts.think):
            break
        if n not in opts.sessions:  # Odoo ended the session: log in again
            if not _log_in(n, opts, session, timed, stop, rng):
                return
        action = rng.choices([a for a, _ in MIX], [w for _, w in MIX])[0]
        if action == "partner_list":
            rows = timed(action, lambda: session.call_kw("res.partner", "search_read", [[]],
                                                         {"fields": PARTNER_FIELDS, "limit": 80,
                                                          "order": "name"}))
            if isinstance(rows, list) and rows:
                partner_ids = [r["id"] for r in rows if isinstance(r, dict) and "id" in r] or partner_ids
        elif action == "partner_read":
            pid = rng.choice(partner_ids) if partner_ids else 1
            timed(action, lambda: session.call_kw("res.partner", "read", [[pid]],
                                                  {"fields": PARTNER_FIELDS + ["street", "zip", "vat", "comment"]}))
        elif action == "name_search":
            term = rng.choice(SEARCH_TERMS)
            timed(action, lambda: session.call_kw("res.partner", "name_search", [],
                                                  {"name": term, "limit": 8}))
        elif action == "product_list":
            model = shared.product(session)
            fields = PRODUCT_FIELDS if model == opts.product_model else ["display_name", "code"]
            timed(action, lambda: session.call_kw(model, "search_read", [[]], {"fields": fields, "limit": 80}))
        else:
            urls = shared.asset_urls(session)
            if urls:
                url = rng.choice(urls)

                def fetch() -> None:
                    status, _, _ = session.request("GET", url)
                    if status != 200:
                        raise OdooError(f"HTTP {status}")
                timed(action, fetch)
    session.close()


def _exporter(opts: Options, samples: list[Sample], stop: threading.Event) -> None:
    """A slow request beside the users: every partner with every stored field, in a loop."""
    session = Session(opts.url, max(opts.timeout, 600), opts.verify_tls)
    params = {"login": opts.login, "password": opts.password, **({"db": opts.db} if opts.db else {})}
    open_login_page(session)
    try:
        session.rpc("/web/session/authenticate", params)
    except OdooError as exc:
        samples.append(Sample("export", time.monotonic(), 0.0, exc.kind))
        return
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            session.call_kw("res.partner", "search_read", [[]], {"fields": [], "context": {"active_test": False}})
            samples.append(Sample("export", t0, time.monotonic() - t0))
        except OdooError as exc:
            samples.append(Sample("export", t0, time.monotonic() - t0, exc.kind))
            stop.wait(1)
    session.close()


class ServerSampler:
    """CPU of the server and memory of its Odoo processes, every 2 s over one SSH session."""

    SCRIPT = ("while :; do echo T; head -n1 /proc/stat; "
              "ps -u odoo -o rss=,args= 2>/dev/null | grep -e odoo -e python || true; echo E; sleep 2; done")

    def __init__(self, opts: Options):
        self.opts = opts
        self.samples: list[ServerSample] = []
        self.proc: subprocess.Popen | None = None
        self.thread: threading.Thread | None = None
        self.error = ""

    def argv(self) -> list[str]:
        target, _, port = (self.opts.ssh or "").partition(":")
        argv = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", *self.opts.ssh_options]
        if self.opts.ssh_key:
            argv += ["-i", self.opts.ssh_key]
        if port:
            argv += ["-p", port]
        return argv + [target, self.SCRIPT]

    def start(self) -> None:
        if not self.opts.ssh:
            return
        self.proc = subprocess.Popen(self.argv(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc and self.proc.stdout
        prev: tuple[int, int] | None = None
        block: list[str] = []
        for line in self.proc.stdout:
            line = line.strip()
            if line == "T":
                block = []
            elif line == "E":
                cpu = None
                rss = []
                for b in block:
                    if b.startswith("cpu "):
                        fields = [int(x) for x in b.split()[1:]]
                        idle, total = fields[3] + (fields[4] if len(fields) > 4 else 0), sum(fields[:8])
                        if prev is not None and total > prev[1]:
                            cpu = 100.0 * (1 - (idle - prev[0]) / (total - prev[1]))
                        prev = (idle, total)
                    elif b.split(None, 1)[0].isdigit():
                        rss.append(int(b.split(None, 1)[0]) / 1024)
                self.samples.append(ServerSample(time.monotonic(), cpu, len(rss), sum(rss), max(rss, default=0.0)))
            else:
                block.append(line)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                _, err = self.proc.communicate(timeout=10)
                self.error = (err or "").strip()[-300:]
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def summary(self, t0: float, t1: float) -> dict[str, float | None]:
        window = [s for s in self.samples if t0 <= s.t <= t1]
        cpu = [s.cpu_percent for s in window if s.cpu_percent is not None]
        return {
            "cpu_percent_mean": round(sum(cpu) / len(cpu), 1) if cpu else None,
            "cpu_percent_max": round(max(cpu), 1) if cpu else None,
            "odoo_processes": max((s.odoo_processes for s in window), default=None),
            "odoo_rss_mib_max_total": round(max((s.odoo_rss_mib for s in window), default=0), 1) if window else None,
            "odoo_rss_mib_max_process": round(max((s.odoo_max_rss_mib for s in window), default=0), 1) if window else None,
        }


def run_step(opts: Options, users: int, sampler: ServerSampler | None = None, log=print) -> StepResult:
    """N users: warm-up, the measured duration, then stop (in-flight requests are bounded
    by the request timeout; the threads are daemons and never outlive the run)."""
    rng = random.Random(opts.seed)
    shared = Shared(opts)
    samples: list[Sample] = []
    export_samples: list[Sample] = []
    stop = threading.Event()
    threads = [threading.Thread(target=_user, args=(i, opts, shared, samples, stop, random.Random(rng.random())),
                                daemon=True, name=f"user-{i}") for i in range(users)]
    if opts.export:
        threads.append(threading.Thread(target=_exporter, args=(opts, export_samples, stop), daemon=True,
                                        name="export"))
    start = time.monotonic()
    for t in threads:
        t.start()
    log(f"loadtest: {users} users{' + export' if opts.export else ''}: warm-up {opts.warmup:g} s, "
        f"then {opts.duration:g} s measured")
    measured_from = start + opts.warmup
    measured_to = measured_from + opts.duration
    stop.wait(max(0.0, measured_to - time.monotonic()))
    stop.set()
    for t in threads:
        t.join(timeout=opts.timeout + 2)
    measured = [s for s in list(samples) if s.start >= measured_from and s.start + s.latency <= measured_to]
    result = summarise(users, measured, opts.duration, opts.p95_target, opts.max_error_rate)
    if sampler is not None:
        result.server = sampler.summary(measured_from, measured_to)
    if opts.export:
        ex = [s for s in export_samples if s.start + s.latency >= measured_from]
        ok = [s.latency for s in ex if s.error is None]
        result.export = {"runs": len(ok), "errors": len(ex) - len(ok),
                         "median_s": round(percentile(ok, 50), 3) if ok else 0.0}
    return result


# --- report ------------------------------------------------------------------------------------


def format_report(opts: Options, results: list[StepResult]) -> str:
    head = (f"{'users':>5}  {'req/s':>6}  {'p50':>7}  {'p95':>7}  {'p99':>7}  {'errors':>7}  "
            f"{'CPU %':>6}  {'Odoo RSS MiB':>12}  verdict (p95 target {opts.p95_target:g} s)")
    lines = [f"odoo-pulumi load test of {opts.url}{f' ({opts.label})' if opts.label else ''}: "
             f"think time {opts.think:g} s, warm-up {opts.warmup:g} s, {opts.duration:g} s measured per step",
             head]
    for r in results:
        cpu = r.server.get("cpu_percent_mean") if r.server else None
        rss = r.server.get("odoo_rss_mib_max_total") if r.server else None
        errs = sum(r.errors.values())
        lines.append(f"{r.users:>5}  {r.requests_per_second:>6.2f}  {_ms(r.p50):>7}  {_ms(r.p95):>7}  "
                     f"{_ms(r.p99):>7}  {errs:>7}  {'-' if cpu is None else f'{cpu:.0f}':>6}  "
                     f"{'-' if rss is None else f'{rss:.0f}':>12}  {r.verdict}")
    for r in results:
        if r.errors:
            lines.append(f"errors at {r.users} users: " + ", ".join(f"{k} x{v}" for k, v in sorted(r.errors.items())))
        if r.export:
            lines.append(f"export beside {r.users} users: {r.export['runs']} runs, median "
                         f"{r.export['median_s']} s, {r.export['errors']} errors")
    last = results[-1]
    lines.append("per action at %d users: " % last.users + "; ".join(
        f"{a} n={v['requests']} p95={_ms(v['p95'])}" for a, v in last.by_action.items()))
    held = [r.users for r in results if r.holds]
    lines.append(f"verdict: holds {max(held)} users at p95 <= {opts.p95_target:g} s" if held
                 else f"verdict: does not hold {min(r.users for r in results)} users at p95 <= {opts.p95_target:g} s")
    return "\n".join(lines)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.0f}ms"


def svg_plot(results: list[StepResult], target: float, title: str = "") -> str:
    """Latency (p50, p95, p99) against users, with the target as a dashed line."""
    w, h, left, right, top, bottom = 640, 400, 60, 20, 40, 50
    xs = [r.users for r in results]
    ys = [v for r in results for v in (r.p50, r.p95, r.p99) if v is not None] + [target]
    xmax = max(xs) if xs else 1
    ymax = max(ys) * 1.1 if ys else 1.0

    def px(x: float) -> float:
        return left + (w - left - right) * (x / xmax if xmax else 0)

    def py(y: float) -> float:
        return h - bottom - (h - top - bottom) * (y / ymax)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="14">{_xml(title or "latency against users")}</text>',
           f'<line x1="{left}" y1="{h - bottom}" x2="{w - right}" y2="{h - bottom}" stroke="black"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="black"/>',
           f'<text x="{w / 2}" y="{h - 12}" text-anchor="middle">simulated users</text>',
           f'<text x="15" y="{h / 2}" text-anchor="middle" transform="rotate(-90 15 {h / 2})">latency (s)</text>']
    for x in xs:
        out.append(f'<line x1="{px(x):.1f}" y1="{h - bottom}" x2="{px(x):.1f}" y2="{h - bottom + 5}" stroke="black"/>')
        out.append(f'<text x="{px(x):.1f}" y="{h - bottom + 18}" text-anchor="middle">{x}</text>')
    for i in range(6):
        y = ymax * i / 5
        out.append(f'<line x1="{left - 5}" y1="{py(y):.1f}" x2="{w - right}" y2="{py(y):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 8}" y="{py(y) + 4:.1f}" text-anchor="end">{y:.2f}</text>')
    out.append(f'<line x1="{left}" y1="{py(target):.1f}" x2="{w - right}" y2="{py(target):.1f}" '
               f'stroke="red" stroke-dasharray="6,4"/>')
    out.append(f'<text x="{w - right - 4}" y="{py(target) - 5:.1f}" text-anchor="end" fill="red">'
               f'p95 target {target:g} s</text>')
    for name, colour, key in (("p50", "#2b8cbe", "p50"), ("p95", "#e6550d", "p95"), ("p99", "#756bb1", "p99")):
        pts = [(px(r.users), py(getattr(r, key))) for r in results if getattr(r, key) is not None]
        if pts:
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="'
                       + " ".join(f"{x:.1f},{y:.1f}" for x, y in pts) + '"/>')
            out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in pts]
        idx = ("p50", "p95", "p99").index(name)
        out.append(f'<text x="{left + 10 + 60 * idx}" y="{top + 5}" fill="{colour}">{name}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- command line --------------------------------------------------------------------------------


def parse_users(text: str) -> list[int]:
    users = [int(u) for u in re.split(r"[,\s]+", text.strip()) if u]
    if not users or any(u < 1 for u in users):
        raise argparse.ArgumentTypeError(f"USERS must be positive numbers like 8 or 4,8,16 (got {text!r})")
    return sorted(set(users))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m odoo_pulumi.loadtest", description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="the server's address, e.g. https://erp.example.com")
    ap.add_argument("--users", type=parse_users, required=True, help="simulated users: 8, or 4,8,16 to step")
    ap.add_argument("--duration", type=float, default=60, help="measured seconds per step (default 60)")
    ap.add_argument("--warmup", type=float, default=10, help="seconds before measuring (default 10)")
    ap.add_argument("--think", type=float, default=DEFAULT_THINK_S,
                    help=f"mean think time between a user's actions, s (default {DEFAULT_THINK_S:g})")
    ap.add_argument("--timeout", type=float, default=30, help="per request, s (default 30)")
    ap.add_argument("--db", default="odoo", help="database (default: odoo, the stack's default `database`)")
    ap.add_argument("--login", default="admin")
    ap.add_argument("--password-file", help="file holding the login's password "
                    "(default: $ODOO_LOADTEST_PASSWORD, else 'admin')")
    ap.add_argument("--p95-target", type=float, default=DEFAULT_P95_TARGET_S)
    ap.add_argument("--max-error-rate", type=float, default=DEFAULT_MAX_ERROR_RATE)
    ap.add_argument("--product-model", default="product.template")
    ap.add_argument("--export", action="store_true", help="run a large export beside the users")
    ap.add_argument("--ssh", help="user@host[:port] of the server: sample CPU and Odoo's memory")
    ap.add_argument("--ssh-key")
    ap.add_argument("--ssh-option", action="append", default=[], help="extra ssh -o option (repeatable)")
    ap.add_argument("--insecure", action="store_true", help="do not verify the TLS certificate")
    ap.add_argument("--out", type=Path, help="directory for report.json and latency.svg")
    ap.add_argument("--label", default="", help="a name for this configuration in the report")
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args(argv)
    if a.password_file:
        password = Path(a.password_file).read_text().strip()
    else:
        password = os.environ.get("ODOO_LOADTEST_PASSWORD", "admin")
    opts = Options(url=a.url, users=a.users, duration=a.duration, warmup=a.warmup, think=a.think,
                   timeout=a.timeout, db=a.db, login=a.login, password=password, p95_target=a.p95_target,
                   max_error_rate=a.max_error_rate, product_model=a.product_model, export=a.export,
                   ssh=a.ssh, ssh_key=a.ssh_key,
                   ssh_options=[x for o in a.ssh_option for x in ("-o", o)],
                   verify_tls=not a.insecure, seed=a.seed, label=a.label)
    try:
        Session(opts.url, opts.timeout)  # validates the URL
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    refused = check_login(opts)
    if refused:
        print(f"error: the login {opts.login!r} was refused ({refused}): give the password of the "
              "deployment's admin user with --password-file (or ODOO_LOADTEST_PASSWORD), and --db "
              "when the server has several databases", file=sys.stderr)
        return 2
    sampler = ServerSampler(opts)
    sampler.start()
    results = []
    try:
        for n in opts.users:
            r = run_step(opts, n, sampler, log=lambda m: print(m, file=sys.stderr))
            print(f"loadtest: {n} users: p95 {_s(r.p95)}, {r.requests_per_second:.2f} req/s, "
                  f"{sum(r.errors.values())} errors -> {r.verdict}", file=sys.stderr)
            results.append(r)
    finally:
        sampler.stop()
    if opts.ssh and not sampler.samples:
        print(f"loadtest: warning: no server sample over ssh {opts.ssh}: {sampler.error}", file=sys.stderr)
    report = format_report(opts, results)
    print(report)
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        data = {"url": opts.url, "label": opts.label, "think_s": opts.think, "duration_s": opts.duration,
                "warmup_s": opts.warmup, "p95_target_s": opts.p95_target,
                "steps": [asdict(r) | {"error_rate": r.error_rate} for r in results]}
        (a.out / "report.json").write_text(json.dumps(data, indent=2) + "\n")
        (a.out / "report.txt").write_text(report + "\n")
        if len(results) > 1:
            (a.out / "latency.svg").write_text(svg_plot(results, opts.p95_target, opts.label or opts.url))
        print(f"loadtest: wrote {a.out}/report.json" + (" and latency.svg" if len(results) > 1 else ""),
              file=sys.stderr)
    return 0 if results and results[-1].holds else 1


if __name__ == "__main__":
    sys.exit(main())
