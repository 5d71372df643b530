"""Sizing: from the number of concurrent users to every number of the server.

Pure and deterministic (no Pulumi import) so that an operator can ask before deploying
(`python -m odoo_pulumi.cli sizing --users 60`) and tests can sweep every user count.

The rules are Odoo's own (deploy guide): one HTTP worker serves about 6 concurrent
users (usersPerWorker; its default is declared in Pulumi.yaml); a server runs at most
2 x CPU cores + 1 worker processes, cron workers included (cores, not vCPUs: an Intel
vCPU is half a core); each process needs about
0.8 x 150 MiB + 0.2 x 1024 MiB of RAM (80 % light requests, 20 % heavy ones). Like the
guide's own example (60 users on 4 cores: 8 + 1 workers for 10 needed), a server whose
workers carry 80 % of the users is accepted, unless the stack asks for the full count.
The need chooses the machine; the machine then runs every HTTP worker its cores allow and
its RAM holds (never fewer than the need): idle workers cost only memory, busy ones use
the cores the office pays for.
PostgreSQL shares the VM and is tuned with pgtune's "web" formulas applied to the memory
Odoo and the OS leave it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from odoo_pulumi.instance_types import BY_NAME, CATALOGUE, InstanceType
from odoo_pulumi.project import default

# --- the stack's defaults: declared once, in Pulumi.yaml ------------------------------
USERS_PER_WORKER = default("usersPerWorker")  # Odoo's rule of thumb
FULL_WORKER_COUNT = default("fullWorkerCount")
ARCH = default("arch")
ARCHES = ("any", "x86_64", "arm64")  # any: the cheapest of both
LIMIT_TIME_CPU = default("limitTimeCpu")
LIMIT_TIME_REAL = default("limitTimeReal")
HOST_THREADS_PER_CORE = default("hostThreadsPerCore")

# --- Odoo's rules of thumb (deploy guide) -------------------------------------------
LIGHT_MIB, HEAVY_MIB, HEAVY_SHARE = 150, 1024, 0.2
MIB_PER_PROCESS = (1 - HEAVY_SHARE) * LIGHT_MIB + HEAVY_SHARE * HEAVY_MIB  # 324.8
MIN_HTTP_WORKERS = 2  # one slow report must not freeze everyone
CRON_WORKERS = 1  # one reserved for scheduled actions
GEVENT_PROCESSES = 1  # the evented process serving /websocket on gevent_port

# A server may cap the workers below the need, as the deploy guide's own example does
# (4 CPUs, 60 users: 8 workers for 10 needed, 48 users' worth = 80 %); below that share
# it is too small. `full_worker_count=True` asks for 100 % instead. Whole percent, so
# the comparison is exact integer arithmetic.
CAPACITY_SHARE_PERCENT = 80
MIN_CAPACITY_SHARE = CAPACITY_SHARE_PERCENT / 100
# Burstable types only while the office's full need fits 2 cores (4 HTTP + 1 cron): a
# busier office would run their CPU credits dry all day.
BURSTABLE_MAX_CORES = 2

# --- the rest of the VM --------------------------------------------------------------
OS_RESERVE_MIB = 1024  # kernel, sshd, nginx, journald, page cache for the filestore
PG_MIN_MIB = 1024  # PostgreSQL never gets less than this for buffers and cache
PG_SHARE_OF_ODOO = 0.5  # ... and at least half of what Odoo's processes may use

# --- per-worker limits (deploy guide's sample, scaled with headroom) -----------------
LIMIT_MEMORY_SOFT_MIB = 640  # the guide's sample: recycle a worker above this
LIMIT_MEMORY_SOFT_MAX_MIB = 1024
HARD_OVER_SOFT = 2.5  # 640 -> 1600 MiB: the guide's pair; big PDF reports need room
LIMIT_TIME_REAL_CRON = 3600  # crons (mass mailing, imports) run longer than requests
LIMIT_REQUEST = 8192
PROXY_TIMEOUT_MARGIN = 60  # Nginx waits this much longer than Odoo's own limit
# Odoo's HTTP socket, held by systemd (odoo.socket): room for every connection a browser
# may open to one site (6) for every user, within Linux's default cap (net.core.somaxconn).
CONNECTIONS_PER_USER = 6
LISTEN_BACKLOG_MIN = 128
LISTEN_BACKLOG_MAX = 4096
ODOO_OWN_BACKLOG_PER_WORKER = 8  # odoo/service/server.py: listen(8 * workers)

# --- database connections --------------------------------------------------------------
DB_MAXCONN = 8  # per HTTP/cron process; a request holds 2-3 connections at a time
DB_MAXCONN_GEVENT = 16  # the evented process serves many websockets at once
PG_SUPERUSER_RESERVED = 3
PG_ADMIN_RESERVE = 7  # psql sessions, pg_dump, monitoring

# The largest type in the catalogue bounds what one VM can serve.
MAX_VCPUS = max(t.vcpus for t in CATALOGUE)
MAX_CORES = max(t.cores for t in CATALOGUE)


class SizingError(ValueError):
    """A request the sizing cannot satisfy; the message says what would."""


@dataclass(frozen=True)
class PostgresSettings:
    max_connections: int
    superuser_reserved_connections: int
    shared_buffers: int  # MiB
    effective_cache_size: int  # MiB
    maintenance_work_mem: int  # MiB
    work_mem: int  # MiB
    wal_buffers: int  # MiB
    min_wal_size: int  # MiB
    max_wal_size: int  # MiB
    checkpoint_completion_target: float
    default_statistics_target: int
    random_page_cost: float
    effective_io_concurrency: int
    max_worker_processes: int
    max_parallel_workers: int
    max_parallel_workers_per_gather: int
    max_parallel_maintenance_workers: int


@dataclass(frozen=True)
class Sizing:
    users: int
    users_per_worker: int
    workers_needed: int
    workers: int
    max_cron_threads: int
    processes: int  # HTTP + cron + gevent
    instance_type: str
    vcpus: int
    cores: int  # what the CPU rule counts: vcpus / threads_per_core
    threads_per_core: int
    memory_mib: int
    arch: str
    burstable: bool
    monthly_usd: float
    odoo_memory_mib: int
    postgres_memory_mib: int
    required_memory_mib: int
    required_vcpus: int  # the full need in vCPUs of the chosen type's family
    required_cores: int  # the full need (every worker needed) in cores
    capacity_users: int  # users the workers carry: workers x users_per_worker
    capacity_share_percent: int  # the least share of the users the sizing accepted
    full_worker_count: bool
    limit_memory_soft: int  # bytes, as odoo.conf wants them
    limit_memory_hard: int
    limit_memory_soft_gevent: int
    limit_memory_hard_gevent: int
    limit_time_cpu: int
    limit_time_real: int
    limit_time_real_cron: int
    limit_request: int
    db_maxconn: int
    db_maxconn_gevent: int
    proxy_timeout: int  # seconds, Nginx's proxy read/send timeouts
    listen_backlog: int  # connections odoo.socket queues while every worker is busy
    postgres: PostgresSettings
    reasons: tuple[str, ...] = field(default=())

    @property
    def summary(self) -> str:
        return f"{self.users} users -> {self.workers} workers + {self.max_cron_threads} cron on {self.machine}"

    @property
    def machine(self) -> str:
        if self.instance_type == "existing-host":
            return f"the existing host ({self.vcpus} vCPU = {self.cores} cores, {self.memory_mib} MiB)"
        return (f"{self.instance_type} ({self.vcpus} vCPU = {self.cores} cores, {self.memory_mib // 1024} GiB, "
                f"{self.arch}), ~${self.monthly_usd:.0f}/month")

    def to_json(self) -> dict:
        data = asdict(self)
        data["reasons"] = list(self.reasons)
        data["summary"] = self.summary
        return data


# --- the rules, one function each ----------------------------------------------------------


def workers_needed(users: int, users_per_worker: int = USERS_PER_WORKER) -> int:
    """HTTP workers the users need: ceil(users / ratio), never fewer than two."""
    return max(MIN_HTTP_WORKERS, math.ceil(users / users_per_worker))


def max_processes(cores: int) -> int:
    """Odoo's ceiling on worker processes (HTTP + cron) for a number of CPU cores."""
    return 2 * cores + 1


def cores_for(processes: int) -> int:
    """The fewest cores whose ceiling admits that many worker processes."""
    return max(1, math.ceil((processes - 1) / 2))


vcpus_for = cores_for  # the name before the rule counted cores


def workers_on(cores: int, needed: int) -> int:
    """HTTP workers on a machine: the need, capped by the CPU rule (cron counted)."""
    return max(MIN_HTTP_WORKERS, min(needed, max_processes(cores) - CRON_WORKERS))


def workers_to_run(chosen: InstanceType, capped: int) -> int:
    """HTTP workers the machine runs: the most its cores allow (Odoo's rule, cron counted)
    that its RAM holds, never fewer than `capped` (the need, within the cores: workers_on).

    The users choose the machine; the machine's cores, once paid for, all serve them. An
    idle worker costs memory only, and the type has it: PostgreSQL is already tuned as if
    they ran (`_postgres_for`). Measured on real Odoo 19, 2 cores, steady office load:
    4 HTTP workers answered 160 users at p95 452 ms and 130 req/s where the 3 the users
    needed gave 570 ms and 117 req/s (docs/real-odoo.md)."""
    for workers in range(ceiling_http_workers(chosen), capped, -1):
        if memory_needed_mib(odoo_memory_mib(workers + CRON_WORKERS + GEVENT_PROCESSES)) <= chosen.memory_mib:
            return workers
    return capped


def carries(workers: int, users: int, users_per_worker: int, share_percent: int) -> bool:
    """Whether `workers` serve at least `share_percent` % of `users` (exact integers)."""
    return workers * users_per_worker * 100 >= share_percent * users


def odoo_memory_mib(processes: int) -> int:
    """The guide's RAM formula over every Odoo process (HTTP, cron, gevent)."""
    return math.ceil(processes * MIB_PER_PROCESS)


def memory_needed_mib(odoo_mib: int) -> int:
    """Odoo's processes, PostgreSQL's minimum share and the OS."""
    return odoo_mib + max(PG_MIN_MIB, math.ceil(odoo_mib * PG_SHARE_OF_ODOO)) + OS_RESERVE_MIB


def postgres_settings(pg_mib: int, vcpus: int, max_connections: int) -> PostgresSettings:
    """pgtune's "web" formulas (SSD) over the memory PostgreSQL may use."""
    shared = pg_mib // 4
    w = vcpus if vcpus >= 4 else 8
    work_mem = max(4, (pg_mib - shared) // ((max_connections + w) * 3))
    parallel = vcpus >= 4
    return PostgresSettings(
        max_connections=max_connections,
        superuser_reserved_connections=PG_SUPERUSER_RESERVED,
        shared_buffers=shared,
        effective_cache_size=pg_mib * 3 // 4,
        maintenance_work_mem=min(pg_mib // 16, 2048),
        work_mem=work_mem,
        wal_buffers=max(1, min(16, shared * 3 // 100)),
        min_wal_size=1024,
        max_wal_size=4096,
        checkpoint_completion_target=0.9,
        default_statistics_target=100,
        random_page_cost=1.1,
        effective_io_concurrency=200,
        max_worker_processes=vcpus if parallel else 8,
        max_parallel_workers=vcpus if parallel else 8,
        max_parallel_workers_per_gather=min(4, math.ceil(vcpus / 2)) if parallel else 2,
        max_parallel_maintenance_workers=min(4, math.ceil(vcpus / 2)) if parallel else 2,
    )


def connection_budget(workers: int, cron: int) -> int:
    """Worst case connections Odoo opens plus the reserve, rounded up to tens."""
    odoo = (workers + cron) * DB_MAXCONN + DB_MAXCONN_GEVENT
    return math.ceil((odoo + PG_SUPERUSER_RESERVED + PG_ADMIN_RESERVE) / 10) * 10


def share_percent(full_worker_count: bool = FULL_WORKER_COUNT) -> int:
    return 100 if full_worker_count else CAPACITY_SHARE_PERCENT


def max_users(users_per_worker: int = USERS_PER_WORKER, full_worker_count: bool = FULL_WORKER_COUNT) -> int:
    """The most users the largest catalogued VM can serve at the accepted share."""
    workers = max_processes(MAX_CORES) - CRON_WORKERS
    return workers * users_per_worker * 100 // share_percent(full_worker_count)


def fits(t: InstanceType, users: int, users_per_worker: int = USERS_PER_WORKER,
         full_worker_count: bool = FULL_WORKER_COUNT) -> bool:
    """Whether a type serves `users`: its workers carry the accepted share and the RAM
    holds the processes it will run (not the full need: a capped type runs fewer)."""
    needed = workers_needed(users, users_per_worker)
    workers = workers_on(t.cores, needed)
    mem = memory_needed_mib(odoo_memory_mib(workers + CRON_WORKERS + GEVENT_PROCESSES))
    return carries(workers, users, users_per_worker, share_percent(full_worker_count)) and t.memory_mib >= mem


def burstable_allowed(users: int, users_per_worker: int = USERS_PER_WORKER) -> bool:
    """Burstable types only when the full need fits 2 cores (a small, bursty office)."""
    return cores_for(workers_needed(users, users_per_worker) + CRON_WORKERS) <= BURSTABLE_MAX_CORES


def candidates(users: int, users_per_worker: int = USERS_PER_WORKER, arch: str = ARCH,
               full_worker_count: bool = FULL_WORKER_COUNT) -> list[InstanceType]:
    """Catalogue types that satisfy the rules for `users`, cheapest first."""
    burstable = burstable_allowed(users, users_per_worker)
    found = [
        t
        for t in CATALOGUE
        if (arch == "any" or t.arch == arch)
        and (burstable or not t.burstable)
        and fits(t, users, users_per_worker, full_worker_count)
    ]
    return sorted(found, key=lambda t: (t.usd_per_hour, t.vcpus, t.name))


# --- the derivation, one named step each ------------------------------------------------


@dataclass(frozen=True)
class Need:
    """What `users` ask for at the full count, whatever machine serves them: the
    reasons quote it and a too-small machine's message says what would fit."""
    users: int
    users_per_worker: int
    workers: int  # HTTP workers, never fewer than MIN_HTTP_WORKERS
    processes: int  # HTTP + cron + gevent
    cores: int
    memory_mib: int

    @classmethod
    def of(cls, users: int, users_per_worker: int) -> "Need":
        needed = workers_needed(users, users_per_worker)
        processes = needed + CRON_WORKERS + GEVENT_PROCESSES
        return cls(users, users_per_worker, needed, processes, cores_for(needed + CRON_WORKERS),
                   memory_needed_mib(odoo_memory_mib(processes)))

    def reasons(self) -> list[str]:
        odoo_mib = odoo_memory_mib(self.processes)
        return [
            f"{self.users} users / {self.users_per_worker} per worker -> "
            f"{math.ceil(self.users / self.users_per_worker)}"
            f" HTTP workers needed (minimum {MIN_HTTP_WORKERS}): {self.workers}",
            f"Odoo's rule counts CPU cores, not vCPUs: at most 2 x cores + 1 worker processes, "
            f"cron included (an Intel vCPU is one of the two threads of a core; a Graviton or "
            f"AMD c7a/m7a vCPU is a whole core); {self.workers} HTTP + {CRON_WORKERS} cron = "
            f"{self.workers + CRON_WORKERS} processes would need {self.cores} cores",
            f"RAM: {self.processes} processes (HTTP, cron, gevent) x {MIB_PER_PROCESS:.1f} MiB"
            f" = {odoo_mib} MiB for Odoo, + PostgreSQL"
            f" >= {self.memory_mib - odoo_mib - OS_RESERVE_MIB} MiB"
            f" + OS {OS_RESERVE_MIB} MiB = {self.memory_mib} MiB at the full count",
        ]


def _check_request(users: int, users_per_worker: int, full_worker_count: bool,
                   host_vcpus: int, host_threads_per_core: int) -> None:
    """Refuse what no machine answers before choosing one: no users, more than the
    largest catalogued type carries, an existing host of fractional cores."""
    if users < 1:
        raise SizingError(f"users must be at least 1 (got {users})")
    ceiling = max_users(users_per_worker, full_worker_count)
    if users > ceiling:
        top_workers = max_processes(MAX_CORES) - CRON_WORKERS
        raise SizingError(
            f"users={users} is more than one VM can serve: the largest catalogued type "
            f"({MAX_CORES} cores) runs at most {top_workers} HTTP workers, which carry "
            f"{top_workers * users_per_worker} users at {users_per_worker} per worker, i.e. "
            f"{ceiling} users at the accepted {share_percent(full_worker_count)} %. Split the company "
            f"across databases/servers or put Odoo behind a load balancer."
        )
    if host_vcpus and (host_threads_per_core < 1 or host_vcpus % host_threads_per_core):
        raise SizingError(
            f"hostVcpus={host_vcpus} is not a whole number of cores at "
            f"hostThreadsPerCore={host_threads_per_core}"
        )


def _existing_host(vcpus: int, memory_mib: int, threads_per_core: int) -> tuple[InstanceType, str]:
    """The operator's own server, described by the stack, stands in for a catalogued type."""
    host = InstanceType("existing-host", vcpus, memory_mib, "any", 0.0, False, threads_per_core)
    return host, (
        f"existing server with {vcpus} vCPU = {host.cores} cores x "
        f"{threads_per_core} thread(s) and {memory_mib} MiB (stack settings; the "
        f"first remote step compares them with the server's lscpu and /proc/meminfo)"
    )


def _cheapest(need: Need, arch: str, full_worker_count: bool) -> tuple[InstanceType, str]:
    """The automatic choice: the cheapest catalogued type that serves the users."""
    share = share_percent(full_worker_count)
    found = candidates(need.users, need.users_per_worker, arch, full_worker_count)
    if not found:
        raise SizingError(
            f"no catalogued {arch if arch != 'any' else ''} instance type serves "
            f"users={need.users} ({need.workers} workers needed, {share} % accepted)"
        )
    chosen = found[0]
    burstable = burstable_allowed(need.users, need.users_per_worker)
    return chosen, (
        f"cheapest type whose workers carry >= {share} % of the users and whose RAM holds "
        f"them{'' if burstable else ' (not burstable: the full need is above 2 cores)'}"
        f"{'' if arch == 'any' else f' on {arch}'}: {chosen.name} ({chosen.vcpus} vCPU = "
        f"{chosen.cores} cores x {chosen.threads_per_core} thread(s)) at ${chosen.usd_per_hour}/h"
    )


def _forced_type(name: str) -> tuple[InstanceType, str]:
    """The stack's instanceType, which must be in the catalogue (its size is known)."""
    chosen = BY_NAME.get(name)
    if chosen is None:
        raise SizingError(
            f"instanceType={name!r} is not in the catalogue; allowed: "
            + ", ".join(t.name for t in CATALOGUE)
        )
    return chosen, (f"instanceType {chosen.name} set in the stack ({chosen.vcpus} vCPU = "
                    f"{chosen.cores} cores x {chosen.threads_per_core} thread(s))")


def _check_machine_fits(chosen: InstanceType, need: Need, workers: int, memory_mib: int, arch: str,
                        full_worker_count: bool, existing: bool) -> None:
    """A machine the stack imposes (instanceType or an existing host) must carry the
    accepted share and hold the processes; the message says what would fit."""
    share = share_percent(full_worker_count)
    users, upw = need.users, need.users_per_worker
    short_cpu = not carries(workers, users, upw, share)
    short_mem = chosen.memory_mib < memory_mib
    if not (short_cpu or short_mem):
        return
    why = []
    if short_cpu:
        why.append(f"{chosen.vcpus} vCPU = {chosen.cores} cores allow {workers} HTTP workers, about "
                   f"{workers * upw} users (< {share} % of {users})")
    if short_mem:
        why.append(f"{chosen.memory_mib} MiB < {memory_mib} MiB needed")
    if existing:
        need_cores = next(c for c in range(1, MAX_CORES + 1) if carries(workers_on(c, need.workers), users, upw, share))
        fit = f"a server with >= {need_cores} cores and >= {memory_mib if not short_cpu else need.memory_mib} MiB"
    else:
        fit = ", ".join(f"{t.name} ({t.vcpus} vCPU, {t.memory_mib // 1024} GiB)" for t in
                        candidates(users, upw, arch if arch != "any" else chosen.arch, full_worker_count)[:3])
    raise SizingError(
        f"{'the existing host' if existing else f'instanceType={chosen.name}'} is too small for users={users}: "
        + "; ".join(why) + ". Would fit: " + fit
    )


def _capacity_reason(chosen: InstanceType, need: Need, workers: int, automatic: bool) -> str:
    """What the workers carry, and why a capped count is still accepted."""
    capacity = workers * need.users_per_worker
    if workers >= need.workers:
        return f"{workers} HTTP workers carry ~{capacity} users at {need.users_per_worker}/worker"
    return (
        f"{chosen.cores} cores cap the HTTP workers at {workers} of {need.workers} needed: "
        f"{workers} workers carry ~{capacity} users at {need.users_per_worker}/worker "
        f"({capacity * 100 // need.users} % of {need.users}); the deploy guide accepts this (its own "
        f"example runs 60 users on 4 CPUs with 8 + 1)"
        + ("; set fullWorkerCount: true to size for all of them" if automatic else "")
    )


def _filled_reason(chosen: InstanceType, need: Need, capped: int, workers: int) -> list[str]:
    """Why more workers run than the users need (workers_to_run), or why not."""
    ceiling = ceiling_http_workers(chosen)
    if workers > capped:
        return [f"the {chosen.cores} cores allow {ceiling} HTTP workers and the RAM holds {workers}: "
                f"{workers} run, not only the {capped} the users need (idle workers cost memory only; "
                f"busy ones use every core; ~{workers * need.users_per_worker} users of capacity): up to "
                f"there, a users change on this machine rewrites nothing on the server"]
    if workers < ceiling:
        return [f"the {chosen.cores} cores would allow {ceiling} HTTP workers, the RAM holds {workers}"]
    return []


def _postgres_for(chosen: InstanceType, odoo_mib: int) -> tuple[int, PostgresSettings, list[str]]:
    """PostgreSQL's memory and tuning for the most workers this type may run, not for
    today's count: its settings then depend on the instance type alone, so changing
    `users` within a type rewrites odoo.conf and restarts Odoo, never PostgreSQL."""
    ceiling_workers = ceiling_http_workers(chosen)
    ceiling_odoo_mib = odoo_memory_mib(ceiling_workers + CRON_WORKERS + GEVENT_PROCESSES)
    pg_mib = max(PG_MIN_MIB, chosen.memory_mib - ceiling_odoo_mib - OS_RESERVE_MIB)
    pg_mib = min(pg_mib, chosen.memory_mib - odoo_mib - OS_RESERVE_MIB)
    max_conn = connection_budget(ceiling_workers, CRON_WORKERS)
    pg = postgres_settings(pg_mib, chosen.vcpus, max_conn)
    return pg_mib, pg, [
        f"PostgreSQL is tuned for this type's ceiling of {ceiling_workers} workers, so a users "
        f"change within the type never restarts it: {chosen.memory_mib} - {ceiling_odoo_mib} "
        f"(Odoo at the ceiling) - {OS_RESERVE_MIB} (OS) = {pg_mib} MiB: shared_buffers "
        f"{pg.shared_buffers} MiB, effective_cache_size {pg.effective_cache_size} MiB, "
        f"work_mem {pg.work_mem} MiB",
        f"connections: ({ceiling_workers} + {CRON_WORKERS}) x db_maxconn {DB_MAXCONN} + gevent "
        f"{DB_MAXCONN_GEVENT} + reserve {PG_SUPERUSER_RESERVED + PG_ADMIN_RESERVE} "
        f"-> max_connections {max_conn}",
    ]


def _memory_limits_mib(chosen: InstanceType, processes: int) -> tuple[int, int, str]:
    """Per-worker soft/hard limits: the guide's 640/1600 MiB pair, raised (up to
    1024 MiB soft) when the machine leaves each process more room."""
    per_process = (chosen.memory_mib - OS_RESERVE_MIB - PG_MIN_MIB) / processes
    soft = int(min(LIMIT_MEMORY_SOFT_MAX_MIB, max(LIMIT_MEMORY_SOFT_MIB, per_process)) // 64 * 64)
    hard = int(soft * HARD_OVER_SOFT)
    return soft, hard, (f"limit_memory_soft {soft} MiB, hard {hard} MiB per worker (virtual memory; "
                        f"recycled above soft, killed above hard)")


def ceiling_http_workers(chosen: InstanceType) -> int:
    """The most HTTP workers this type may run (Odoo's rule, the cron worker counted in):
    what the settings that must not change with `users` are sized for."""
    return max_processes(chosen.cores) - CRON_WORKERS


def listen_backlog(ceiling_workers: int, users_per_worker: int) -> int:
    """Room in Odoo's HTTP socket for every connection the users the type can carry may
    open: set by the type, not by `users`, so a users change never restarts the socket."""
    users = ceiling_workers * users_per_worker
    return max(LISTEN_BACKLOG_MIN, min(LISTEN_BACKLOG_MAX, users * CONNECTIONS_PER_USER))


def _listen_backlog(chosen: InstanceType, workers: int, users_per_worker: int) -> tuple[int, str]:
    """odoo.socket's queue for this type, and why."""
    ceiling = ceiling_http_workers(chosen)
    backlog = listen_backlog(ceiling, users_per_worker)
    return backlog, (
        f"listen backlog {backlog} (the type's ceiling of {ceiling} "
        f"workers x {users_per_worker} users x {CONNECTIONS_PER_USER} browser connections, "
        f"{LISTEN_BACKLOG_MIN}..{LISTEN_BACKLOG_MAX}) on odoo.socket, which systemd holds for Odoo: "
        f"Odoo's own socket queues only {ODOO_OWN_BACKLOG_PER_WORKER} x {workers} workers = "
        f"{ODOO_OWN_BACKLOG_PER_WORKER * workers} connections, and past that the kernel drops them: each "
        "dropped one waits 1-7 s for a TCP retransmit while workers may sit idle. With the larger queue a "
        "burst waits in order, and a restart of Odoo refuses no connection")


def size(
    users: int,
    *,
    users_per_worker: int = USERS_PER_WORKER,
    instance_type: str | None = None,
    arch: str = ARCH,
    limit_time_real: int = LIMIT_TIME_REAL,
    limit_time_cpu: int = LIMIT_TIME_CPU,
    host_vcpus: int = 0,
    host_memory_mib: int = 0,
    host_threads_per_core: int = HOST_THREADS_PER_CORE,
    full_worker_count: bool = FULL_WORKER_COUNT,
) -> Sizing:
    """Derive every number of the server for `users` concurrent users.

    `host_vcpus`/`host_memory_mib`/`host_threads_per_core` describe an existing server
    (target host): it is then checked like an explicit instance type instead of
    choosing one. `full_worker_count` asks for every worker the users need instead of
    the deploy guide's 80 % share.
    """
    _check_request(users, users_per_worker, full_worker_count, host_vcpus, host_threads_per_core)
    need = Need.of(users, users_per_worker)
    existing = bool(host_vcpus and host_memory_mib)
    if existing:
        chosen, why_chosen = _existing_host(host_vcpus, host_memory_mib, host_threads_per_core)
    elif instance_type is None:
        chosen, why_chosen = _cheapest(need, arch, full_worker_count)
    else:
        chosen, why_chosen = _forced_type(instance_type)

    capped = workers_on(chosen.cores, need.workers)  # what the users need, within the cores
    mem_need = memory_needed_mib(odoo_memory_mib(capped + CRON_WORKERS + GEVENT_PROCESSES))
    if instance_type is not None or existing:
        _check_machine_fits(chosen, need, capped, mem_need, arch, full_worker_count, existing)
    workers = workers_to_run(chosen, capped)
    processes = workers + CRON_WORKERS + GEVENT_PROCESSES
    odoo_mib = odoo_memory_mib(processes)
    pg_mib, pg, pg_reasons = _postgres_for(chosen, odoo_mib)
    soft_mib, hard_mib, limits_reason = _memory_limits_mib(chosen, processes)
    backlog, backlog_reason = _listen_backlog(chosen, workers, users_per_worker)
    reasons = need.reasons() + [
        why_chosen,
        _capacity_reason(chosen, need, capped, automatic=not existing and instance_type is None),
        *_filled_reason(chosen, need, capped, workers),
        "workers = 0 (Odoo's threaded mode, one process and one connection pool for all) is "
        "never what this sizing produces: the multi-process mode is what holds the load",
        *pg_reasons,
        limits_reason,
        backlog_reason,
    ]
    mib = 1024 * 1024
    return Sizing(
        users=users,
        users_per_worker=users_per_worker,
        workers_needed=need.workers,
        workers=workers,
        max_cron_threads=CRON_WORKERS,
        processes=processes,
        instance_type=chosen.name,
        vcpus=chosen.vcpus,
        cores=chosen.cores,
        threads_per_core=chosen.threads_per_core,
        memory_mib=chosen.memory_mib,
        arch=chosen.arch,
        burstable=chosen.burstable,
        monthly_usd=chosen.monthly_usd,
        odoo_memory_mib=odoo_mib,
        postgres_memory_mib=pg_mib,
        required_memory_mib=mem_need,
        required_vcpus=need.cores * chosen.threads_per_core,
        required_cores=need.cores,
        capacity_users=workers * users_per_worker,
        capacity_share_percent=share_percent(full_worker_count),
        full_worker_count=full_worker_count,
        limit_memory_soft=soft_mib * mib,
        limit_memory_hard=hard_mib * mib,
        limit_memory_soft_gevent=soft_mib * mib,
        limit_memory_hard_gevent=hard_mib * mib,
        limit_time_cpu=limit_time_cpu,
        limit_time_real=limit_time_real,
        limit_time_real_cron=max(LIMIT_TIME_REAL_CRON, limit_time_real),
        limit_request=LIMIT_REQUEST,
        db_maxconn=DB_MAXCONN,
        db_maxconn_gevent=DB_MAXCONN_GEVENT,
        proxy_timeout=limit_time_real + PROXY_TIMEOUT_MARGIN,
        listen_backlog=backlog,
        postgres=pg,
        reasons=tuple(reasons),
    )


# --- the operator's question: python -m odoo_pulumi.cli sizing --users 60 ----------------------


def format_table(s: Sizing) -> str:
    rows = [
        ("users (concurrent)", s.users),
        ("HTTP workers", f"{s.workers} (needed {s.workers_needed}; carry ~{s.capacity_users} users)"),
        ("cron workers", s.max_cron_threads),
        ("instance", f"{s.instance_type}: {s.vcpus} vCPU = {s.cores} cores, {s.memory_mib} MiB, {s.arch}"
         f"{', burstable' if s.burstable else ''}"),
        ("cost (on-demand, us-east-1)", f"${s.monthly_usd:.2f}/month"),
        ("Odoo RAM", f"{s.odoo_memory_mib} MiB"),
        ("PostgreSQL RAM", f"{s.postgres_memory_mib} MiB"),
        ("limit_memory_soft/hard", f"{s.limit_memory_soft // 2**20} / {s.limit_memory_hard // 2**20} MiB"),
        ("limit_time_cpu/real/cron", f"{s.limit_time_cpu} / {s.limit_time_real} / {s.limit_time_real_cron} s"),
        ("limit_request", s.limit_request),
        ("db_maxconn / gevent", f"{s.db_maxconn} / {s.db_maxconn_gevent}"),
        ("nginx proxy timeouts", f"{s.proxy_timeout} s"),
        ("listen backlog (odoo.socket)", s.listen_backlog),
    ]
    rows += [(f"postgres {k}", v) for k, v in asdict(s.postgres).items()]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    lines += ["", "Why:"] + [f"  - {r}" for r in s.reasons]
    return "\n".join(lines)
