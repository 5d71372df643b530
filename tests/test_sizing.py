"""Sizing: the table operators read in the README and the invariants that keep a
server healthy for every user count."""

import json
import re
import math
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from odoo_pulumi import sizing
from odoo_pulumi.instance_types import BY_NAME, CATALOGUE

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def test_docs_example_four_cpus_sixty_users():
    """The deploy guide's worked example: 4 CPUs, 60 users -> 10 needed, 9 allowed ->
    8 HTTP workers + 1 cron, about 3 GB for those 9 processes."""
    assert sizing.workers_needed(60) == 10
    assert sizing.max_processes(4) == 9
    assert sizing.workers_on(4, 10) == 8
    assert sizing.CRON_WORKERS == 1
    assert 2.8 * 1024 < sizing.odoo_memory_mib(9) < 3.0 * 1024  # "about 3 GB"


@pytest.mark.parametrize("arch", ["any", "arm64", "x86_64"])
def test_docs_example_is_the_automatic_answer(arch):
    """Left to choose, 60 users get what the guide describes: 4 cores, 8 HTTP + 1 cron
    (10 needed, 9 allowed, 80 % of the need accepted), not all 10 on twice the cores."""
    z = sizing.size(60, arch=arch)
    assert (z.cores, z.workers, z.max_cron_threads) == (4, 8, 1)
    assert z.capacity_users == 48 and z.capacity_share_percent == 80
    assert any("8 workers carry ~48 users at 6/worker" in r and "the deploy guide accepts this" in r
               for r in z.reasons)
    assert z.instance_type == {"any": "c7g.xlarge", "arm64": "c7g.xlarge", "x86_64": "c7a.xlarge"}[arch]


def test_full_worker_count_sizes_for_every_worker():
    """Offices that want the full count get it: 60 users -> 10 + 1 on 5+ cores (which
    then run every worker their cores allow: 16)."""
    z = sizing.size(60, full_worker_count=True)
    assert (z.workers_needed, z.max_cron_threads) == (10, 1) and z.cores >= 5
    assert z.workers == 2 * z.cores + 1 - z.max_cron_threads
    assert z.capacity_share_percent == 100 and z.instance_type == "c7g.2xlarge"
    assert sizing.size(60).monthly_usd < z.monthly_usd
    with pytest.raises(sizing.SizingError, match="too small for users=60"):
        sizing.size(60, instance_type="c7g.xlarge", full_worker_count=True)


@pytest.mark.parametrize("itype", ["c7i.2xlarge", "c7a.xlarge", "c7g.xlarge", "t3.2xlarge"])
def test_docs_example_through_an_explicit_instance_type(itype):
    """The same example on every 4-core type: Intel's 8 vCPUs are 4 cores, so 8 + 1
    (not the 10 + 1 that counting vCPUs would give), and the report says why."""
    z = sizing.size(60, instance_type=itype)
    assert (z.workers, z.max_cron_threads, z.cores) == (8, 1, 4)
    assert any("4 cores cap the HTTP workers at 8 of 10" in r for r in z.reasons)


@pytest.mark.parametrize("itype, vcpus, cores", [
    ("t3.medium", 2, 1), ("c7i.2xlarge", 8, 4), ("m7i.12xlarge", 48, 24),
    ("c7a.xlarge", 4, 4), ("m7a.large", 2, 2),
    ("t4g.medium", 2, 2), ("c7g.2xlarge", 8, 8), ("c8g.xlarge", 4, 4), ("m8g.large", 2, 2), ("r8g.large", 2, 2),
])
def test_cores_per_type(itype, vcpus, cores):
    """Published threads per core: 2 on Intel (t3, c7i, m7i), 1 on AMD c7a/m7a and Graviton."""
    t = BY_NAME[itype]
    assert (t.vcpus, t.cores) == (vcpus, cores)


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_intel_vcpus_are_half_cores(arch):
    """The issue's case: an 8-vCPU Intel type runs the workers of 4 cores, a Graviton one 8."""
    itype = "c7i.2xlarge" if arch == "x86_64" else "c7g.2xlarge"
    z = sizing.size(60, instance_type=itype)
    assert z.workers + z.max_cron_threads <= 2 * z.cores + 1
    assert z.workers == (8 if arch == "x86_64" else 16)


@pytest.mark.parametrize(
    "users, workers, instance, vcpus, mem_gib",
    [
        (5, 4, "t4g.medium", 2, 4),  # 2 needed (the floor); the 2 cores run 4
        (15, 4, "t4g.medium", 2, 4),
        (30, 4, "c7g.large", 2, 4),  # full need above 2 cores: no burstable; 4 of 5 = 80 %
        (60, 8, "c7g.xlarge", 4, 8),  # the guide's example
        (150, 32, "c7g.4xlarge", 16, 32),  # 25 needed; 16 cores run 32
        (300, 64, "c7g.8xlarge", 32, 64),
    ],
)
def test_readme_table(users, workers, instance, vcpus, mem_gib):
    """The README's table of what 5..300 users get must be what the code does."""
    z = sizing.size(users)
    assert (z.workers, z.instance_type, z.vcpus, z.memory_mib) == (workers, instance, vcpus, mem_gib * 1024)
    assert z.max_cron_threads == 1


def test_arch_restriction_picks_x86():
    """Operators with x86-only modules can pin the architecture."""
    z = sizing.size(15, arch="x86_64")
    assert z.arch == "x86_64" and z.instance_type == "t3.medium"
    assert (z.cores, z.workers) == (1, 2)  # one core: 2 HTTP + 1 cron, 12 of 15 users = 80 %


def test_too_small_instance_type_says_what_fits():
    """An explicit type too small is an error that names types that would fit."""
    with pytest.raises(sizing.SizingError) as e:
        sizing.size(150, instance_type="t3.medium")
    msg = str(e.value)
    assert "t3.medium is too small for users=150" in msg and "Would fit:" in msg
    fits = re.findall(r"(\S+) \(\d+ vCPU", msg.split("Would fit: ")[1])
    assert fits
    for name in fits:
        sizing.size(150, instance_type=name)  # each suggestion really fits


def test_unknown_instance_type_lists_allowed():
    with pytest.raises(sizing.SizingError, match="not in the catalogue; allowed: t3.small"):
        sizing.size(15, instance_type="t2.nano")


def test_above_one_vm_fails_with_reason():
    """Above what one VM can serve the sizing says so instead of picking nonsense."""
    top = sizing.max_users()
    sizing.size(top)
    with pytest.raises(sizing.SizingError, match="more than one VM can serve"):
        sizing.size(top + 1)
    with pytest.raises(sizing.SizingError, match="at least 1"):
        sizing.size(0)


def test_limits_follow_the_guide_on_small_machines():
    """On a small VM the per-worker limits are the guide's sample pair 640/1600 MiB."""
    z = sizing.size(15)
    assert z.limit_memory_soft == 640 * 2**20 and z.limit_memory_hard == 1600 * 2**20
    assert (z.limit_time_cpu, z.limit_time_real, z.limit_request) == (600, 1200, 8192)


@settings(max_examples=300, deadline=None)
@given(users=st.integers(min_value=1, max_value=sizing.max_users()),
       upw=st.sampled_from([4, 5, 6, 8]), full=st.booleans(),
       arch=st.sampled_from(["any", "x86_64", "arm64"]))
def test_invariants_hold_for_every_user_count(users, upw, full, arch):
    """Connection budget, timeouts, CPU and RAM rules hold for any valid user count."""
    if users > sizing.max_users(upw, full):
        return
    z = sizing.size(users, users_per_worker=upw, full_worker_count=full, arch=arch)
    pg = z.postgres
    # connection budget: every pool at its maximum plus the reserve fits max_connections
    worst = (z.workers + z.max_cron_threads) * z.db_maxconn + z.db_maxconn_gevent
    assert worst + pg.superuser_reserved_connections + sizing.PG_ADMIN_RESERVE <= pg.max_connections
    # Odoo's own time limit acts before Nginx gives up
    assert z.proxy_timeout >= z.limit_time_real
    # CPU rule (cores, not vCPUs) and the workers' need, at the accepted share
    assert z.cores * BY_NAME[z.instance_type].threads_per_core == z.vcpus
    assert z.workers + z.max_cron_threads <= 2 * z.cores + 1
    assert z.workers >= 2 and z.max_cron_threads >= 1
    assert z.workers * upw >= (1.0 if full else 0.8) * users
    # RAM: Odoo's processes + PostgreSQL's minimum + OS fit in the instance
    assert z.odoo_memory_mib == math.ceil(z.processes * sizing.MIB_PER_PROCESS)
    assert z.memory_mib >= z.required_memory_mib
    assert z.memory_mib >= sizing.memory_needed_mib(z.odoo_memory_mib)  # the workers that run
    ceiling = 2 * z.cores + 1 - z.max_cron_threads
    assert z.workers == ceiling or z.memory_mib < sizing.memory_needed_mib(
        math.ceil((z.workers + 3) * sizing.MIB_PER_PROCESS)), "a worker the cores allow and the RAM holds is idle"
    assert z.workers >= min(z.workers_needed, ceiling)
    assert z.postgres_memory_mib >= sizing.PG_MIN_MIB
    assert 0 < pg.shared_buffers < pg.effective_cache_size < z.postgres_memory_mib
    assert pg.work_mem >= 4 and pg.maintenance_work_mem <= 2048
    assert z.limit_memory_soft < z.limit_memory_hard
    assert BY_NAME[z.instance_type].cores == z.cores


def _serves(t, users, upw, full):
    """Whether a type serves `users`, from the rules as the README states them: HTTP
    workers = the need (ceil(users / upw), at least 2) capped at 2 x cores; they carry
    >= 80 % of the users (100 % with the full count); the RAM holds those workers + cron
    + gevent at 324.8 MiB each, PostgreSQL >= max(1 GiB, half of Odoo's) and 1 GiB of OS;
    burstable only when the full need fits 2 cores."""
    need = max(2, math.ceil(users / upw))
    workers = max(2, min(need, 2 * t.cores))
    odoo = math.ceil((workers + 2) * 324.8)
    full_need_cores = math.ceil(need / 2)
    return (workers * upw >= (1.0 if full else 0.8) * users
            and t.memory_mib >= odoo + max(1024, math.ceil(odoo / 2)) + 1024
            and (not t.burstable or full_need_cores <= 2))


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("arch", ["any", "x86_64", "arm64"])
def test_cheapest_fit_for_every_user_count(arch, full):
    """For 1..max users the choice is the cheapest catalogue type that serves them (ties:
    fewer vCPUs), checked against the catalogue with the rules restated here."""
    wrong = []
    for users in range(1, sizing.max_users(full_worker_count=full) + 1):
        fit = [t for t in CATALOGUE if (arch == "any" or t.arch == arch) and _serves(t, users, 6, full)]
        best = min(fit, key=lambda t: (t.usd_per_hour, t.vcpus))
        z = sizing.size(users, arch=arch, full_worker_count=full)
        if z.instance_type != best.name:
            wrong.append((users, z.instance_type, best.name))
    assert not wrong, wrong[:10]


def test_current_families_change_the_answer():
    """AMD c7a (one core per vCPU) is the cheapest x86 fit from 30 users on: Intel needs
    twice the vCPUs for the same cores. Graviton c7g stays cheaper per hour than c8g."""
    assert sizing.size(30, arch="x86_64").instance_type == "c7a.large"
    assert sizing.size(150, arch="x86_64").instance_type == "c7a.4xlarge"
    picked = {sizing.size(u, arch=a).instance_type.split(".")[0]
              for u in range(1, sizing.max_users() + 1, 7) for a in ("any", "x86_64", "arm64")}
    assert "c7i" not in picked and "c7a" in picked


def test_cli_table_and_json():
    """`python -m odoo_pulumi.cli sizing` answers an operator before deploying."""
    out = subprocess.run([sys.executable, "-m", "odoo_pulumi.cli", "sizing", "--users", "60"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "HTTP workers" in out and "Why:" in out and "c7g.xlarge: 4 vCPU = 4 cores" in out
    assert "counts CPU cores, not vCPUs" in out and "8 workers carry ~48 users" in out
    data = json.loads(subprocess.run([sys.executable, "-m", "odoo_pulumi.cli", "sizing", "--users", "60", "--json"],
                                     cwd=ROOT, capture_output=True, text=True, check=True).stdout)
    for key in ("users", "workers", "max_cron_threads", "instance_type", "vcpus", "memory_mib", "arch",
                "odoo_memory_mib", "limit_memory_soft", "limit_memory_hard", "limit_time_cpu",
                "limit_time_real", "db_maxconn", "db_maxconn_gevent", "postgres", "monthly_usd",
                "cores", "threads_per_core", "capacity_users", "capacity_share_percent"):
        assert key in data, key
    assert data["users"] == 60 and data["workers"] == 8 and data["cores"] == 4
    full = json.loads(subprocess.run([sys.executable, "-m", "odoo_pulumi.cli", "sizing", "--users", "60", "--json",
                                      "--full-worker-count"], cwd=ROOT, capture_output=True, text=True,
                                     check=True).stdout)
    assert full["workers_needed"] == 10 and full["workers"] == 16 and full["capacity_share_percent"] == 100
    assert all(isinstance(data["postgres"][k], int) for k in
               ("shared_buffers", "effective_cache_size", "work_mem", "maintenance_work_mem"))
    bad = subprocess.run([sys.executable, "-m", "odoo_pulumi.cli", "sizing", "--users", "100000"],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "more than one VM" in bad.stderr


def test_readme_table_matches_the_code():
    """The README's table is what the code computes, row by row."""
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| (\d+) \| (\d+) \+ (\d+) \| (\S+) \((\d+), (\d+) GiB, (\S+)\) \| (\d+) MiB \| "
                      r"(\d+) / (\d+) MiB \| (\d+) \| (\d+)/(\d+) MiB \| (\d+) \|$", readme, re.M)
    assert [int(r[0]) for r in rows] == [5, 15, 30, 60, 150, 300]
    for r in rows:
        z = sizing.size(int(r[0]))
        assert r[1:] == (str(z.workers), str(z.max_cron_threads), z.instance_type, str(z.vcpus),
                         str(z.memory_mib // 1024), z.arch, str(z.odoo_memory_mib),
                         str(z.postgres_memory_mib), str(z.postgres.shared_buffers),
                         str(z.postgres.max_connections), str(z.limit_memory_soft >> 20),
                         str(z.limit_memory_hard >> 20), f"{z.monthly_usd:.0f}"), r[0]


def test_existing_host_counts_cores():
    """target host: the declared vCPUs divided by the declared threads per core are the
    cores the rule counts; a size that is not whole cores is refused."""
    ht = sizing.size(60, host_vcpus=8, host_memory_mib=16384, host_threads_per_core=2)
    assert (ht.cores, ht.workers) == (4, 8)
    plain = sizing.size(60, host_vcpus=8, host_memory_mib=16384)
    assert (plain.cores, plain.workers) == (8, 16)
    with pytest.raises(sizing.SizingError, match="not a whole number of cores"):
        sizing.size(15, host_vcpus=3, host_memory_mib=8192, host_threads_per_core=2)
    with pytest.raises(sizing.SizingError, match="existing host is too small"):
        sizing.size(60, host_vcpus=4, host_memory_mib=16384, host_threads_per_core=2)


@pytest.mark.parametrize("itype", ["t4g.medium", "c7g.xlarge", "c7i.2xlarge", "m8g.4xlarge"])
def test_listen_backlog_outgrows_odoos_own_and_follows_the_type(itype):
    """Odoo's own socket queues 8 x workers connections; past that the kernel drops them
    (1-7 s stalls, measured on real Odoo 19). odoo.socket's queue holds every browser
    connection of the users the type can carry, and stays the same for any users count
    on one type (a users change never restarts the socket)."""
    backlogs = set()
    for users in (1, 6, 15, 30, 60, 150):
        try:
            z = sizing.size(users, instance_type=itype)
        except sizing.SizingError:
            continue
        assert z.listen_backlog > sizing.ODOO_OWN_BACKLOG_PER_WORKER * z.workers
        assert z.listen_backlog >= min(sizing.LISTEN_BACKLOG_MAX, z.capacity_users * sizing.CONNECTIONS_PER_USER)
        assert sizing.LISTEN_BACKLOG_MIN <= z.listen_backlog <= sizing.LISTEN_BACKLOG_MAX
        assert any("listen backlog" in r and "odoo.socket" in r for r in z.reasons)
        backlogs.add(z.listen_backlog)
    assert len(backlogs) == 1, backlogs


def test_the_machine_runs_every_worker_its_cores_allow_and_its_ram_holds():
    """The users choose the machine; its cores then all serve them: 15 users need 3 HTTP
    workers, the 2 cores of t4g.medium allow 4 and its 4 GiB hold them, so 4 run (real
    Odoo 19, 2 cores, 160 users: p95 452 against 570 ms, docs/real-odoo.md). A users change
    within the type changes no number on the server."""
    z = sizing.size(15)
    assert (z.instance_type, z.workers_needed, z.workers, z.processes) == ("t4g.medium", 3, 4, 6)
    assert z.capacity_users == 24
    assert any("4 run, not only the 3 the users need" in r for r in z.reasons), z.reasons
    for users in (5, 10, 20):
        other = sizing.size(users, instance_type="t4g.medium")
        assert (other.workers, other.limit_memory_soft, other.postgres) == (z.workers, z.limit_memory_soft,
                                                                             z.postgres), users
    # RAM short of the cores' ceiling: as many as it holds, and the report says so
    small = sizing.size(15, host_vcpus=4, host_memory_mib=4096)
    assert (small.cores, small.workers) == (4, 4)
    assert sizing.memory_needed_mib(small.odoo_memory_mib) <= 4096
    assert any("the 4 cores allow 8 HTTP workers and the RAM holds 4: 4 run" in r for r in small.reasons), \
        small.reasons
