"""Sizing: the table operators read in the README and the invariants that keep a
server healthy for every user count."""

import json
import re
import math
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from components import sizing
from components.instance_types import BY_NAME, CATALOGUE

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def test_docs_example_four_cpus_sixty_users():
    """The deploy guide's worked example: 4 CPUs, 60 users -> 10 needed, 9 allowed ->
    8 HTTP workers + 1 cron, about 3 GB for those 9 processes."""
    assert sizing.workers_needed(60) == 10
    assert sizing.max_processes(4) == 9
    assert sizing.workers_on(4, 10) == 8
    assert sizing.CRON_WORKERS == 1
    assert 2.8 * 1024 < sizing.odoo_memory_mib(9) < 3.0 * 1024  # "about 3 GB"


def test_docs_example_through_an_explicit_instance_type():
    """The same example end to end: a 4-vCPU type for 60 users runs 8 + 1 and says why."""
    z = sizing.size(60, instance_type="c7i.xlarge")
    assert (z.workers, z.max_cron_threads, z.vcpus) == (8, 1, 4)
    assert any("cap the HTTP workers at 8 of 10" in r for r in z.reasons)


@pytest.mark.parametrize(
    "users, workers, instance, vcpus, mem_gib",
    [
        (5, 2, "t4g.medium", 2, 4),  # the floor of two workers
        (15, 3, "t4g.medium", 2, 4),
        (30, 5, "c7g.xlarge", 4, 8),  # above 2 vCPU: no burstable
        (60, 10, "c7g.2xlarge", 8, 16),
        (150, 25, "c7g.4xlarge", 16, 32),
        (300, 50, "c7g.8xlarge", 32, 64),
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
       upw=st.sampled_from([4, 5, 6, 8]))
def test_invariants_hold_for_every_user_count(users, upw):
    """Connection budget, timeouts, CPU and RAM rules hold for any valid user count."""
    if users > sizing.max_users(upw):
        return
    z = sizing.size(users, users_per_worker=upw)
    pg = z.postgres
    # connection budget: every pool at its maximum plus the reserve fits max_connections
    worst = (z.workers + z.max_cron_threads) * z.db_maxconn + z.db_maxconn_gevent
    assert worst + pg.superuser_reserved_connections + sizing.PG_ADMIN_RESERVE <= pg.max_connections
    # Odoo's own time limit acts before Nginx gives up
    assert z.proxy_timeout >= z.limit_time_real
    # CPU rule and the workers' need
    assert z.workers + z.max_cron_threads <= 2 * z.vcpus + 1
    assert z.workers >= 2 and z.max_cron_threads >= 1
    assert z.workers * upw >= users
    # RAM: Odoo's processes + PostgreSQL's minimum + OS fit in the instance
    assert z.odoo_memory_mib == math.ceil(z.processes * sizing.MIB_PER_PROCESS)
    assert z.memory_mib >= z.required_memory_mib
    assert z.postgres_memory_mib >= sizing.PG_MIN_MIB
    assert 0 < pg.shared_buffers < pg.effective_cache_size < z.postgres_memory_mib
    assert pg.work_mem >= 4 and pg.maintenance_work_mem <= 2048
    assert z.limit_memory_soft < z.limit_memory_hard
    # the choice is the cheapest type that satisfies the same rules
    cheaper = [t for t in CATALOGUE if t.usd_per_hour < BY_NAME[z.instance_type].usd_per_hour
               and t.vcpus >= z.required_vcpus and t.memory_mib >= z.required_memory_mib
               and (not t.burstable or z.required_vcpus <= 2)]
    assert cheaper == []


def test_cli_table_and_json():
    """`python -m components.sizing` answers an operator before deploying."""
    out = subprocess.run([sys.executable, "-m", "components.sizing", "--users", "60"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "HTTP workers" in out and "Why:" in out and "c7g.2xlarge" in out
    data = json.loads(subprocess.run([sys.executable, "-m", "components.sizing", "--users", "60", "--json"],
                                     cwd=ROOT, capture_output=True, text=True, check=True).stdout)
    for key in ("users", "workers", "max_cron_threads", "instance_type", "vcpus", "memory_mib", "arch",
                "odoo_memory_mib", "limit_memory_soft", "limit_memory_hard", "limit_time_cpu",
                "limit_time_real", "db_maxconn", "db_maxconn_gevent", "postgres", "monthly_usd"):
        assert key in data, key
    assert data["users"] == 60 and data["workers"] == 10
    assert all(isinstance(data["postgres"][k], int) for k in
               ("shared_buffers", "effective_cache_size", "work_mem", "maintenance_work_mem"))
    bad = subprocess.run([sys.executable, "-m", "components.sizing", "--users", "100000"],
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
