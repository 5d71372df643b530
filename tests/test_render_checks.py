"""Rendered files checked by the programs that read them: nginx -t, systemd-analyze
verify, and a throwaway PostgreSQL cluster started with the tuning file."""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from odoo_pulumi import render
from odoo_pulumi.settings import sizing_for
from tests.conftest import host_settings, stack_settings

pytestmark = pytest.mark.slow


def need(tool):
    if not shutil.which(tool) and not Path(tool).exists():
        pytest.fail(f"{tool} is not installed: .ci/run installs it (apt)")


@pytest.fixture(params=["small", "large", "host"])
def rendered(request):
    s = host_settings(users=60) if request.param == "host" else stack_settings(request.param)
    z = sizing_for(s)
    return s, z, render.server_files(s, z)


def test_nginx_accepts_the_site(rendered, tmp_path):
    """nginx -t on the rendered site inside a minimal nginx.conf, with a throwaway
    certificate standing in for Let's Encrypt's."""
    need("/usr/sbin/nginx")
    s, z, files = rendered
    for key in ("nginx-site", "nginx-site-acme"):
        if key not in files:
            continue
        site = files[key].content
        if s.domain:
            live = tmp_path / "live"
            live.mkdir(exist_ok=True)
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                            "-subj", f"/CN={s.domain}", "-keyout", str(live / "privkey.pem"),
                            "-out", str(live / "fullchain.pem")], check=True, capture_output=True)
            site = site.replace(f"/etc/letsencrypt/live/{s.domain}", str(live))
        (tmp_path / "site.conf").write_text(site)
        (tmp_path / "nginx.conf").write_text(
            f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
            f"http {{ access_log off; include {tmp_path}/site.conf; }}\n")
        r = subprocess.run(["/usr/sbin/nginx", "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert "syntax is ok" in r.stderr and "[warn]" not in r.stderr, r.stderr


def test_nginx_rejects_a_broken_site(tmp_path):
    """The check above can fail: a missing brace is caught by nginx -t."""
    need("/usr/sbin/nginx")
    s = host_settings()
    (tmp_path / "site.conf").write_text(render.render_nginx_site(s, sizing_for(s), tls=False).rstrip()[:-1])
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{ include {tmp_path}/site.conf; }}\n")
    r = subprocess.run(["/usr/sbin/nginx", "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode != 0


def verify_unit(unit_text: str, tmp: Path, socket_text: str | None = None) -> subprocess.CompletedProcess:
    """systemd-analyze verify on the unit file. verify also checks that ExecStart's
    program exists: the venv Python of a source install is not on this machine, so it
    is pointed at a scratch executable (the ExecStart line itself is asserted in
    test_render.py)."""
    exe = unit_text.split("ExecStart=")[1].split()[0]
    if not Path(exe).exists():
        stand_in = tmp / "python3"
        stand_in.write_text("#!/bin/sh\n")
        stand_in.chmod(0o755)
        unit_text = unit_text.replace(f"ExecStart={exe} ", f"ExecStart={stand_in} ")
    unit = tmp / "odoo.service"
    unit.write_text(unit_text)
    units = [str(unit)]
    if socket_text is not None:
        (tmp / "odoo.socket").write_text(socket_text)
        units.append(str(tmp / "odoo.socket"))
    return subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True)


def test_systemd_accepts_the_unit(rendered, tmp_path):
    """No warning at all: systemd ignores unknown keys with only a warning, so the
    test fails on any output, not just on the exit code."""
    need("systemd-analyze")
    s, z, files = rendered
    socket = files.get("odoo.socket")
    r = verify_unit(files["odoo.service"].content, tmp_path, socket.content if socket else None)
    noise = [l for l in r.stderr.splitlines() if "odoo." in l or "Unknown" in l or "Failed" in l]
    assert r.returncode == 0 and not noise, r.stderr


def test_systemd_verify_catches_a_typo(tmp_path):
    need("systemd-analyze")
    s = host_settings()
    unit = render.render_odoo_unit(s, sizing_for(s)).replace("Restart=on-failure", "Restart=sometimes")
    r = verify_unit(unit, tmp_path)
    assert "restart specifier" in r.stderr


def pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL server binaries missing: .ci/run installs postgresql")
    return Path(found[-1]).parent


@pytest.fixture
def pg_tmp():
    """A scratch directory the postgres user can reach (pytest's own is 0700 root)."""
    d = Path(tempfile.mkdtemp(prefix="odoo-pulumi-pg-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("stack", ["small", "large"])
def test_postgres_starts_with_the_tuning(stack, pg_tmp):
    """A throwaway cluster started with the rendered conf.d file reports every value
    through SHOW, so a typo or a unit PostgreSQL refuses is caught here."""
    s = stack_settings(stack)
    z = sizing_for(s)
    tuning = render.server_files(s, z)["postgresql-tuning"].content
    bindir = pg_bin()
    user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    run_as = ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []
    data, sock = pg_tmp / "data", pg_tmp / "sock"
    sock.mkdir()
    shutil.chown(pg_tmp, user) if os.geteuid() == 0 else None
    shutil.chown(sock, user) if os.geteuid() == 0 else None
    subprocess.run(run_as + [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)
    conf_d = data / "conf.d"
    conf_d.mkdir()
    (conf_d / "90-odoo-pulumi.conf").write_text(tuning)
    with open(data / "postgresql.conf", "a") as f:
        f.write(f"\ninclude_dir = 'conf.d'\nport = 55432\nunix_socket_directories = '{sock}'\n"
                "huge_pages = off\n")
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", user, str(data)], check=True)
    start = subprocess.run(run_as + [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(pg_tmp / "log"),
                                     "-w", "-t", "60", "start"], capture_output=True, text=True)
    try:
        assert start.returncode == 0, (pg_tmp / "log").read_text()
        def show(name):
            return subprocess.run(run_as + [str(bindir / "psql"), "-h", str(sock), "-p", "55432", "-U",
                                            "postgres", "-XAtc", f"SHOW {name}"],
                                  check=True, capture_output=True, text=True).stdout.strip()
        pg = z.postgres
        mb = lambda v: f"{v // 1024}GB" if v % 1024 == 0 and v >= 1024 else f"{v}MB"
        assert show("max_connections") == str(pg.max_connections)
        assert show("shared_buffers") == mb(pg.shared_buffers)
        assert show("effective_cache_size") == mb(pg.effective_cache_size)
        assert show("work_mem") == mb(pg.work_mem)
        assert show("maintenance_work_mem") == mb(pg.maintenance_work_mem)
        assert show("random_page_cost") == "1.1"
        assert show("effective_io_concurrency") == str(pg.effective_io_concurrency)
        assert show("listen_addresses") == "localhost"
        assert show("superuser_reserved_connections") == "3"
    finally:
        subprocess.run(run_as + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)
