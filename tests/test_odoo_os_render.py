"""Rendered files and scripts for what a real Odoo 19 needs from the server (issue 9).

Each fix here was found by deploying a real Odoo 19.0; the end-to-end tests on the
systemd test host (tests/remote/test_steps_on_testhost.py) prove the behaviour with the
FAKE Odoo, these pin the decisions in the rendered text, fast.
"""

import configparser
import re
import shutil
import subprocess

import pytest

from odoo_pulumi import render, steps
from odoo_pulumi.settings import SettingsError, sizing_for
from tests.conftest import host_settings

ODOO_19_REQUIREMENTS = """\
# a few lines of Odoo 19.0's requirements.txt, as they are
Babel==2.17.0 ; python_version >= '3.13'
gevent==24.11.1 ; sys_platform != 'win32' and python_version >= '3.13'  # (Trixie)
lxml==5.2.1; python_version >= '3.12' # (Noble - removed html clean)
lxml-html-clean; python_version >= '3.12' # (Noble - removed from lxml, unpinned for futur security patches)
psycopg2==2.9.10 ; python_version >= '3.13' # (Trixie)
python-ldap==3.4.4 ; python_version >= '3.12' # (Noble) Mostly to have a wheel package
"""


def source_settings(tmp_path, **over):
    archive = tmp_path / "odoo.tar.gz"
    archive.write_bytes(b"x")
    return host_settings(odooSource="archive", odooArchive=str(archive), **over)


def scripts_for(s):
    files = render.server_files(s, sizing_for(s))
    from odoo_pulumi import backup
    files.update(backup.server_files(s))
    return steps.render_scripts(s, files, host="10.0.0.5", archive_sha256="0" * 64 if s.odoo_archive else None,
                                admin_password="not-a-secret-master", admin_user_password="not-a-secret-user")


def test_unit_allows_only_the_resource_calls_odoo_makes():
    """@privileged and @resources stay denied; setpriority (the cron worker's os.nice) and
    setrlimit/prlimit64 (the workers' limits) come back, in that order (a later allow
    line adds to the allow list systemd built from the earlier lines)."""
    s = host_settings()
    lines = [l for l in render.render_odoo_unit(s, sizing_for(s)).splitlines() if l.startswith("SystemCallFilter=")]
    assert lines == ["SystemCallFilter=@system-service", "SystemCallFilter=~@privileged @resources",
                     "SystemCallFilter=setpriority setrlimit prlimit64"]


def test_unit_wants_postgresql_without_requiring_it():
    """Requires= stops Odoo with PostgreSQL and nothing starts it again; Wants= and After=
    keep the start order without binding Odoo's life to PostgreSQL's."""
    s = host_settings()
    unit = render.render_odoo_unit(s, sizing_for(s))
    # Only its own socket is required (odoo.socket, Odoo 19): never PostgreSQL.
    binds = re.findall(r"^(?:Requires|BindsTo|PartOf|Requisite)=(.*)$", unit, re.M)
    assert binds == ["odoo.socket"] and "postgresql" not in " ".join(binds)
    assert re.search(r"^Wants=.*\bpostgresql\.service\b", unit, re.M)
    assert re.search(r"^After=.*\bpostgresql\.service\b.*postgresql@16-main\.service", unit, re.M)


def test_unit_exposure_stays_low(tmp_path):
    """systemd-analyze security scores the unit offline: allowing two calls back must not
    cost the hardening (1.4 with systemd 252 here and 257 on the Debian 13 host)."""
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze missing: .ci/run installs systemd")
    s = host_settings()
    unit = tmp_path / "odoo.service"
    unit.write_text(render.render_odoo_unit(s, sizing_for(s)))
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", str(unit)], capture_output=True, text=True)
    m = re.search(r"Overall exposure level for odoo\.service: (\d+\.\d)", r.stdout)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 1.5, r.stdout


@pytest.mark.parametrize("version", ["17.0", "18.0", "19.0"])
def test_odoo_conf_has_no_false_for_a_non_boolean_option(version):
    """Odoo 19 skips (with a warning at every start) a non-boolean option that reads
    False: only Odoo's boolean options may say False or True."""
    s = host_settings(odooVersion=version)
    p = configparser.RawConfigParser()
    p.read_string(render.render_odoo_conf(s, sizing_for(s), "$pbkdf2-sha512$x"))
    booleans = {"proxy_mode", "list_db", "x_sendfile"}
    for key, value in p.items("options"):
        if value in ("False", "True", "false", "true"):
            assert key in booleans, (key, value)


@pytest.mark.parametrize("version,flag", [("17.0", "--without-demo=all"), ("18.0", "--without-demo=all"),
                                          ("19.0", "--without-demo=True")])
def test_database_initialised_with_the_versions_own_flag(tmp_path, version, flag):
    """17.0/18.0 read --without-demo as a list of modules ("all"); 19.0 as a boolean and
    warns "invalid boolean value" for "all"."""
    assert render.without_demo_arg(version) == flag
    script = scripts_for(source_settings(tmp_path, odooVersion=version))["odoo-config"]
    assert f"--stop-after-init {flag}) >" in script
    assert script.count("--without-demo") == 1
    # ... with the unit's umask, so that the files it writes have their modes in service
    assert "(umask 0027 && exec runuser -u odoo -- " in script
    assert "UMask=0027" in render.render_odoo_unit(source_settings(tmp_path), sizing_for(source_settings(tmp_path)))


def _build_packages(script: str, requirements: str, tmp_path) -> list[str]:
    """Run the odoo-install script's requirements_build_packages on a requirements file."""
    m = re.search(r"^    requirements_build_packages\(\) \{\n.*?^    \}\n", script, re.M | re.S)
    assert m, "requirements_build_packages not in the odoo-install script"
    req = tmp_path / "requirements.txt"
    req.write_text(requirements)
    r = subprocess.run(["bash", "-c", m.group(0) + f'requirements_build_packages "$1"', "bash", str(req)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_headers_for_the_requirements_that_compile(tmp_path):
    """lxml 5.2.1 has no wheel for Python 3.13 (Debian 13) and compiles: libxml2-dev and
    libxslt1-dev, besides psycopg2's libpq-dev and python-ldap's headers. Names only:
    lxml-html-clean or psycopg2-binary need nothing."""
    script = scripts_for(source_settings(tmp_path))["odoo-install"]
    assert _build_packages(script, ODOO_19_REQUIREMENTS, tmp_path) == [
        "libpq-dev", "libldap2-dev", "libsasl2-dev", "libxml2-dev", "libxslt1-dev"]
    assert _build_packages(script, "lxml-html-clean\npsycopg2-binary==2.9\nLXML >= 5\n", tmp_path) == [
        "libxml2-dev", "libxslt1-dev"]
    assert _build_packages(script, "# lxml\n", tmp_path) == []


def test_offline_test_host_offers_the_build_headers():
    """The test host has no internet: its apt repository must hold what the step installs."""
    listed = {line.strip() for line in (steps.ROOT / "testbed" / "testhost" / "apt-packages.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    needed = set(steps.SOURCE_PACKAGES) | {p for _, pkgs in steps.REQUIREMENT_BUILD_PACKAGES for p in pkgs}
    assert needed <= listed, needed - listed


@pytest.mark.parametrize("url,trusted", [
    ("http://10.213.0.1:8214/simple/", ["--trusted-host", "10.213.0.1:8214"]),
    ("http://pypi.internal/simple", ["--trusted-host", "pypi.internal"]),
    ("https://pypi.internal/simple", []),
])
def test_plain_http_index_is_trusted_by_name(tmp_path, url, trusted):
    """pip ignores an http:// index ("not a trusted or secure host") unless it is named
    with --trusted-host; an https:// one needs nothing."""
    s = source_settings(tmp_path, pipIndexUrl=url)
    assert steps._pip_args(s) == ["--index-url", url, *trusted]
    script = scripts_for(s)["odoo-install"]
    assert " ".join(["--index-url", url, *trusted]) in script


@pytest.mark.parametrize("url", ["git@example.com:simple", "ftp://mirror/simple", "ssh://host/simple", "pypi.org/simple"])
def test_index_url_must_be_http(url):
    with pytest.raises(SettingsError, match="pipIndexUrl.*http:// or https://"):
        host_settings(odooSource="git", pipIndexUrl=url)


def test_filestore_group_for_nginx_in_the_scripts(tmp_path):
    """Nginx's user joins the filestore's group (and is reloaded to take it); odoo-install
    makes the filestore that group's, setgid, and the data directory traversable only."""
    scripts = scripts_for(source_settings(tmp_path))
    assert "ensure_member www-data odoo-filestore" in scripts["nginx"]
    assert 'ensure_dir "$fs" odoo "$fs_group" 2750' in scripts["odoo-install"]
    assert "ensure_dir /var/lib/odoo odoo odoo 0711" in scripts["odoo-install"]
    assert "fs=/var/lib/odoo/filestore" in scripts["odoo-install"]
