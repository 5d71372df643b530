"""The wait step compares an existing server's declared size with the server itself.

Odoo's worker rule counts cores, and the sizing of a `target: host` stack trusts
hostVcpus / hostThreadsPerCore / hostMemoryMiB. The first remote step reads the
server's `lscpu -p` and /proc/meminfo: a declared size larger than the server must stop
the deployment before anything changes; a smaller one or another thread count is a
warning. Only the wait step runs here (it changes nothing), on a fresh test host.
"""

from __future__ import annotations

import pytest

from odoo_pulumi import steps
from tests.remote.test_steps_on_testhost import (  # noqa: F401 (testhost is a fixture)
    ADMIN_PASSWORD, archive, render, run_step, settings_for, testhost,
)

pytestmark = pytest.mark.e2e


def server_size(testhost) -> tuple[int, int, int]:
    """CPUs, cores and MemTotal (MiB) as the server reports them."""
    out = testhost.sudo("lscpu -p=CPU | grep -vc '^#'; lscpu -p=CORE,SOCKET | grep -v '^#' | sort -u | wc -l; "
                        "awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo")
    cpus, cores, mem = (int(x) for x in out.split())
    return cpus, cores, mem


def run_wait(testhost, archive, **declared):
    s = settings_for(testhost, archive, users=5, **declared)
    scripts = render(s, testhost.host, steps.file_sha256(archive))
    return run_step(testhost, s, "wait", scripts["wait"])


def test_matching_size_passes_and_reports_the_server(testhost, archive):
    cpus, cores, mem = server_size(testhost)
    run = run_wait(testhost, archive, hostVcpus=cpus, hostThreadsPerCore=cpus // cores, hostMemoryMiB=mem)
    assert run.returncode == 0, run.stderr
    assert f"server: {cpus} CPUs = {cores} cores x {cpus // cores} thread(s) per core, {mem} MiB" in run.stdout
    # changed: only the step library, the first time wait runs on this host
    assert "declared size matches" in run.stdout and run.changed == int("installed the step library" in run.stdout)


def test_smaller_declared_size_is_a_warning(testhost, archive):
    cpus, cores, mem = server_size(testhost)
    if mem < 4096 * 1.25:
        pytest.skip("the test host has too little memory to declare less than it has")
    run = run_wait(testhost, archive, hostVcpus=1, hostMemoryMiB=4096)
    assert run.returncode == 0, run.stderr
    if cpus > 1:
        assert "warning: the server has" in run.stdout and "more than the 1 vCPU = 1 cores declared" in run.stdout
    assert f"the server has {mem} MiB, more than the 4096 MiB declared" in run.stdout


@pytest.mark.parametrize("what", ["vcpus", "cores", "memory"])
def test_larger_declared_size_stops_before_any_change(testhost, archive, what):
    """A size the server does not have fails the step, naming the setting and the real figure."""
    cpus, cores, mem = server_size(testhost)
    declared = {"hostVcpus": cpus, "hostThreadsPerCore": cpus // cores, "hostMemoryMiB": mem}
    if what == "vcpus":
        declared["hostVcpus"] = cpus * 4
        declared["hostThreadsPerCore"] = 4 * cpus // cores  # same cores claim, more threads
        expected = f"hostVcpus={cpus * 4} but the server has {cpus} CPUs"
    elif what == "cores":
        declared["hostVcpus"] = cpus * 2
        declared["hostThreadsPerCore"] = 1
        expected = f"= {cpus * 2} cores but the server has {cores} cores"
    else:
        declared["hostMemoryMiB"] = mem * 2
        expected = f"hostMemoryMiB={mem * 2} but the server has {mem} MiB"
    run = run_wait(testhost, archive, **declared)
    assert run.returncode != 0
    assert "the declared size claims more than the server has" in run.stderr and expected in run.stderr, run.stderr
    assert ADMIN_PASSWORD not in run.stdout + run.stderr
