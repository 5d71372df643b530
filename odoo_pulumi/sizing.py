"""Sizing: from the number of concurrent users to every number of the server.

Pure and deterministic (no Pulumi import) so that an operator can ask before deploying
(`python -m odoo_pulumi.cli sizing --users 60`) and tests can sweep every user count.

The rules are Odoo's own (deploy guide): one HTTP worker serves about 6 concurrent
users; a server runs at most 2 x CPU cores + 1 worker processes, cron workers included
(cores, not vCPUs: an Intel vCPU is half a core); each process needs about
0.8 x 150 MiB + 0.2 x 1024 MiB of RAM (80 % light requests, 20 % heavy ones). Like the
guide's own example (60 users on 4 cores: 8 + 1 workers for 10 needed), a server whose
workers carry 80 % of the users is accepted, unless the stack asks for the full count.
PostgreSQL shares the VM and is tuned with pgtune's "web" formulas applied to the memory
Odoo and the OS leave it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from odoo_pulumi.instance_types import BY_NAME, CATALOGUE, InstanceType

# --- Odoo's rules of thumb (deploy guide) -------------------------------------------
USERS_PER_WORKER = 6
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
LIMIT_TIME_CPU = 600
LIMIT_TIME_REAL = 1200
LIMIT_TIME_REAL_CRON = 3600  # crons (mass mailing, imports) run longer than requests
LIMIT_REQUEST = 8192
PROXY_TIMEOUT_MARGIN = 60  # Nginx waits this much longer than Odoo's own limit

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
    postgres: PostgresSettings
    reasons: tuple[str, ...] = field(default=())

    @property
    def summary(self) -> str:
        if self.instance_type == "existing-host":
            return (
                f"{self.users} users -> {self.workers} workers + {self.max_cron_threads} cron "
                f"on the existing host ({self.vcpus} vCPU = {self.cores} cores, {self.memory_mib} MiB)"
            )
        return (
            f"{self.users} users -> {self.workers} workers + {self.max_cron_threads} cron "
            f"on {self.instance_type} ({self.vcpus} vCPU = {self.cores} cores, "
            f"{self.memory_mib // 1024} GiB, {self.arch}), ~${self.monthly_usd:.0f}/month"
        )

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


def share_percent(full_worker_count: bool = False) -> int:
    return 100 if full_worker_count else CAPACITY_SHARE_PERCENT


def max_users(users_per_worker: int = USERS_PER_WORKER, full_worker_count: bool = False) -> int:
    """The most users the largest catalogued VM can serve at the accepted share."""
    workers = max_processes(MAX_CORES) - CRON_WORKERS
    return workers * users_per_worker * 100 // share_percent(full_worker_count)


def fits(t: InstanceType, users: int, users_per_worker: int = USERS_PER_WORKER,
         full_worker_count: bool = False) -> bool:
    """Whether a type serves `users`: its workers carry the accepted share and the RAM
    holds the processes it will run (not the full need: a capped type runs fewer)."""
    needed = workers_needed(users, users_per_worker)
    workers = workers_on(t.cores, needed)
    mem = memory_needed_mib(odoo_memory_mib(workers + CRON_WORKERS + GEVENT_PROCESSES))
    return carries(workers, users, users_per_worker, share_percent(full_worker_count)) and t.memory_mib >= mem


def burstable_allowed(users: int, users_per_worker: int = USERS_PER_WORKER) -> bool:
    """Burstable types only when the full need fits 2 cores (a small, bursty office)."""
    return cores_for(workers_needed(users, users_per_worker) + CRON_WORKERS) <= BURSTABLE_MAX_CORES


def candidates(users: int, users_per_worker: int = USERS_PER_WORKER, arch: str = "any",
               full_worker_count: bool = False) -> list[InstanceType]:
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


# --- the derivation ----------------------------------------------------------------------


def size(
    users: int,
    *,
    users_per_worker: int = USERS_PER_WORKER,
    instance_type: str | None = None,
    arch: str = "any",
    limit_time_real: int = LIMIT_TIME_REAL,
    limit_time_cpu: int = LIMIT_TIME_CPU,
    host_vcpus: int = 0,
    host_memory_mib: int = 0,
    host_threads_per_core: int = 1,
    full_worker_count: bool = False,
) -> Sizing:
    """Derive every number of the server for `users` concurrent users.

    `host_vcpus`/`host_memory_mib`/`host_threads_per_core` describe an existing server
    (target host): it is then checked like an explicit instance type instead of
    choosing one. `full_worker_count` asks for every worker the users need instead of
    the deploy guide's 80 % share.
    """
    if users < 1:
        raise SizingError(f"users must be at least 1 (got {users})")
    share = share_percent(full_worker_count)
    ceiling = max_users(users_per_worker, full_worker_count)
    if users > ceiling:
        top_workers = max_processes(MAX_CORES) - CRON_WORKERS
        raise SizingError(
            f"users={users} is more than one VM can serve: the largest catalogued type "
            f"({MAX_CORES} cores) runs at most {top_workers} HTTP workers, which carry "
            f"{top_workers * users_per_worker} users at {users_per_worker} per worker, i.e. "
            f"{ceiling} users at the accepted {share} %. Split the company across "
            f"databases/servers or put Odoo behind a load balancer."
        )
    if host_vcpus and (host_threads_per_core < 1 or host_vcpus % host_threads_per_core):
        raise SizingError(
            f"hostVcpus={host_vcpus} is not a whole number of cores at "
            f"hostThreadsPerCore={host_threads_per_core}"
        )
    needed = workers_needed(users, users_per_worker)
    full_processes = needed + CRON_WORKERS + GEVENT_PROCESSES
    req_cores = cores_for(needed + CRON_WORKERS)
    req_mem = memory_needed_mib(odoo_memory_mib(full_processes))
    allow_burstable = burstable_allowed(users, users_per_worker)
    reasons = [
        f"{users} users / {users_per_worker} per worker -> {math.ceil(users / users_per_worker)}"
        f" HTTP workers needed (minimum {MIN_HTTP_WORKERS}): {needed}",
        f"Odoo's rule counts CPU cores, not vCPUs: at most 2 x cores + 1 worker processes, "
        f"cron included (an Intel vCPU is one of the two threads of a core; a Graviton or "
        f"AMD c7a/m7a vCPU is a whole core); {needed} HTTP + {CRON_WORKERS} cron = "
        f"{needed + CRON_WORKERS} processes would need {req_cores} cores",
        f"RAM: {full_processes} processes (HTTP, cron, gevent) x {MIB_PER_PROCESS:.1f} MiB"
        f" = {odoo_memory_mib(full_processes)} MiB for Odoo, + PostgreSQL"
        f" >= {req_mem - odoo_memory_mib(full_processes) - OS_RESERVE_MIB} MiB"
        f" + OS {OS_RESERVE_MIB} MiB = {req_mem} MiB at the full count",
    ]

    existing = bool(host_vcpus and host_memory_mib)
    if existing:
        chosen = InstanceType("existing-host", host_vcpus, host_memory_mib, "any", 0.0, False,
                              host_threads_per_core)
        reasons.append(
            f"existing server with {host_vcpus} vCPU = {chosen.cores} cores x "
            f"{host_threads_per_core} thread(s) and {host_memory_mib} MiB (stack settings; the "
            f"first remote step compares them with the server's lscpu and /proc/meminfo)"
        )
    elif instance_type is None:
        found = candidates(users, users_per_worker, arch, full_worker_count)
        if not found:
            raise SizingError(
                f"no catalogued {arch if arch != 'any' else ''} instance type serves "
                f"users={users} ({needed} workers needed, {share} % accepted)"
            )
        chosen = found[0]
        reasons.append(
            f"cheapest type whose workers carry >= {share} % of the users and whose RAM holds "
            f"them{'' if allow_burstable else ' (not burstable: the full need is above 2 cores)'}"
            f"{'' if arch == 'any' else f' on {arch}'}: {chosen.name} ({chosen.vcpus} vCPU = "
            f"{chosen.cores} cores x {chosen.threads_per_core} thread(s)) at ${chosen.usd_per_hour}/h"
        )
    else:
        chosen = BY_NAME.get(instance_type)
        if chosen is None:
            raise SizingError(
                f"instanceType={instance_type!r} is not in the catalogue; allowed: "
                + ", ".join(t.name for t in CATALOGUE)
            )
        reasons.append(f"instanceType {chosen.name} set in the stack ({chosen.vcpus} vCPU = "
                       f"{chosen.cores} cores x {chosen.threads_per_core} thread(s))")

    workers = workers_on(chosen.cores, needed)
    processes = workers + CRON_WORKERS + GEVENT_PROCESSES
    odoo_mib = odoo_memory_mib(processes)
    mem_need = memory_needed_mib(odoo_mib)
    if instance_type is not None or existing:
        short_cpu = not carries(workers, users, users_per_worker, share)
        short_mem = chosen.memory_mib < mem_need
        if short_cpu or short_mem:
            fit = candidates(users, users_per_worker, arch if arch != "any" else chosen.arch,
                             full_worker_count)[:3]
            why = []
            if short_cpu:
                why.append(
                    f"{chosen.vcpus} vCPU = {chosen.cores} cores allow {workers} HTTP workers, about "
                    f"{workers * users_per_worker} users (< {share} % of {users})"
                )
            if short_mem:
                why.append(f"{chosen.memory_mib} MiB < {mem_need} MiB needed")
            need_cores = next(c for c in range(1, MAX_CORES + 1)
                              if carries(workers_on(c, needed), users, users_per_worker, share))
            raise SizingError(
                f"{'the existing host' if existing else f'instanceType={instance_type}'} is too small for users={users}: "
                + "; ".join(why)
                + ". Would fit: "
                + (f"a server with >= {need_cores} cores and >= {mem_need if not short_cpu else req_mem} MiB"
                   if existing else
                   ", ".join(f"{t.name} ({t.vcpus} vCPU, {t.memory_mib // 1024} GiB)" for t in fit))
            )
    capacity = workers * users_per_worker
    if workers < needed:
        reasons.append(
            f"{chosen.cores} cores cap the HTTP workers at {workers} of {needed} needed: "
            f"{workers} workers carry ~{capacity} users at {users_per_worker}/worker "
            f"({capacity * 100 // users} % of {users}); the deploy guide accepts this (its own "
            f"example runs 60 users on 4 CPUs with 8 + 1)"
            + ("" if existing or instance_type is not None else
               "; set fullWorkerCount: true to size for all of them")
        )
    else:
        reasons.append(f"{workers} HTTP workers carry ~{capacity} users at {users_per_worker}/worker")
    reasons.append(
        "workers = 0 (Odoo's threaded mode, one process and one connection pool for all) is "
        "never what this sizing produces: the multi-process mode is what holds the load"
    )

    # PostgreSQL is tuned for the most workers this type may run, not for today's count:
    # its settings then depend on the instance type alone, so changing `users` within a
    # type rewrites odoo.conf and restarts Odoo, never PostgreSQL.
    ceiling_workers = max_processes(chosen.cores) - CRON_WORKERS
    ceiling_odoo_mib = odoo_memory_mib(ceiling_workers + CRON_WORKERS + GEVENT_PROCESSES)
    pg_mib = max(PG_MIN_MIB, chosen.memory_mib - ceiling_odoo_mib - OS_RESERVE_MIB)
    pg_mib = min(pg_mib, chosen.memory_mib - odoo_mib - OS_RESERVE_MIB)
    max_conn = connection_budget(ceiling_workers, CRON_WORKERS)
    pg = postgres_settings(pg_mib, chosen.vcpus, max_conn)
    reasons.append(
        f"PostgreSQL is tuned for this type's ceiling of {ceiling_workers} workers, so a users "
        f"change within the type never restarts it: {chosen.memory_mib} - {ceiling_odoo_mib} "
        f"(Odoo at the ceiling) - {OS_RESERVE_MIB} (OS) = {pg_mib} MiB: shared_buffers "
        f"{pg.shared_buffers} MiB, effective_cache_size {pg.effective_cache_size} MiB, "
        f"work_mem {pg.work_mem} MiB"
    )
    reasons.append(
        f"connections: ({ceiling_workers} + {CRON_WORKERS}) x db_maxconn {DB_MAXCONN} + gevent "
        f"{DB_MAXCONN_GEVENT} + reserve {PG_SUPERUSER_RESERVED + PG_ADMIN_RESERVE} "
        f"-> max_connections {max_conn}"
    )

    per_process = (chosen.memory_mib - OS_RESERVE_MIB - PG_MIN_MIB) / processes
    soft_mib = int(min(LIMIT_MEMORY_SOFT_MAX_MIB, max(LIMIT_MEMORY_SOFT_MIB, per_process)) // 64 * 64)
    hard_mib = int(soft_mib * HARD_OVER_SOFT)
    reasons.append(
        f"limit_memory_soft {soft_mib} MiB, hard {hard_mib} MiB per worker (virtual memory; "
        f"recycled above soft, killed above hard)"
    )
    proxy_timeout = limit_time_real + PROXY_TIMEOUT_MARGIN
    mib = 1024 * 1024
    return Sizing(
        users=users,
        users_per_worker=users_per_worker,
        workers_needed=needed,
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
        required_vcpus=req_cores * chosen.threads_per_core,
        required_cores=req_cores,
        capacity_users=capacity,
        capacity_share_percent=share,
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
        proxy_timeout=proxy_timeout,
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
    ]
    rows += [(f"postgres {k}", v) for k, v in asdict(s.postgres).items()]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    lines += ["", "Why:"] + [f"  - {r}" for r in s.reasons]
    return "\n".join(lines)
