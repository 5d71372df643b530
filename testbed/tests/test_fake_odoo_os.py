"""The FAKE Odoo does at the operating-system level what a real Odoo 19 did to a deployment.

A real Odoo 19.0 exposed server-side defects the fake used to hide (issue 9): its cron
worker calls os.nice(10) and its workers set their own rlimits (a system-call filter
killed them), x_sendfile makes Nginx open the filestore's files itself (403 when it
cannot), and 19.0 warns about option values it cannot parse. These tests pin that the
fake now does the same, so the end-to-end tests on the systemd host catch each defect.
Facts from Odoo's source (odoo/service/server.py, odoo/http.py, odoo/tools/config.py).
"""

import hashlib
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.tests.test_fake_odoo import (FAKE, Running, children_of, cluster, run_fake,  # noqa: F401
                                  write_conf)

DB = "fake_files"


def request(port, path, method="GET", body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def started(conf, opts, log, children, umask=0o027):
    """The fake started with the unit's UMask (the process umask is inherited)."""
    old = os.umask(umask)
    try:
        server = Running(conf, opts, log)
    finally:
        os.umask(old)
    return server.wait_ready(expect_children=children)


@pytest.fixture(scope="module")
def prefork_files(cluster, tmp_path_factory):  # noqa: F811
    """Prefork with x_sendfile, one database, a memory limit: the production shape."""
    directory = tmp_path_factory.mktemp("files")
    conf, opts = write_conf(directory, cluster, workers=2, max_cron_threads=1, x_sendfile=True,
                            db_name=DB, dbfilter=f"^{DB}$", limit_memory_hard=1536 * 1024 * 1024,
                            limit_time_cpu=600)
    init = run_fake("-c", conf, "-d", DB, "-i", "base", "--stop-after-init", "--without-demo=True")
    assert init.returncode == 0, init.stderr
    server = started(conf, opts, directory / "odoo.log", children=4)
    yield server
    server.stop()


def _limits(pid):
    """{limit name: soft value} from /proc/<pid>/limits."""
    out = {}
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines()[1:]:
        name, soft = line[:26].strip(), line[26:47].strip()
        out[name] = soft
    return out


def test_cron_worker_lowers_its_priority_and_workers_set_rlimits(prefork_files):
    """os.nice(10) in the cron worker (setpriority), RLIMIT_AS = limit_memory_hard and a
    finite RLIMIT_CPU in every worker (setrlimit): what a filter denying @resources kills."""
    kids = children_of(prefork_files.proc.pid)
    assert sorted(kids.values()) == ["odoo:cron", "odoo:gevent", "odoo:http", "odoo:http"]
    for pid, comm in kids.items():
        nice = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
        assert nice == (10 if comm == "odoo:cron" else 0), comm
        limits = _limits(pid)
        assert limits["Max address space"] == str(1536 * 1024 * 1024), (comm, limits)
        if comm != "odoo:gevent":
            assert limits["Max cpu time"] != "unlimited", comm


def test_x_sendfile_hands_asset_bundles_to_the_proxy(prefork_files):
    """The login page's asset bundles are written to data_dir/filestore/<db>/<xx>/<sha1>
    with the process umask (0027: group-readable, nothing for others) and answered with an
    empty body and X-Accel-Redirect: /web/filestore/<db>/<xx>/<sha1>, Odoo's URI for
    Nginx's internal location."""
    port = prefork_files.opts["http_port"]
    status, _, page = request(port, "/web/login")
    urls = re.findall(r'(?:href|src)="(/web/assets/[^"]+)"', page.decode())
    assert status == 200 and any(u.endswith(".js") for u in urls), page[:500]
    for url in urls:
        status, headers, body = request(port, url)
        assert status == 200 and body == b"", (url, status, body[:200])
        accel = headers["X-Accel-Redirect"]
        assert accel.startswith(f"/web/filestore/{DB}/")
        path = Path(prefork_files.opts["data_dir"]) / "filestore" / accel[len("/web/filestore/"):]
        data = path.read_bytes()
        assert len(data) > 4096 and path.name == hashlib.sha1(data).hexdigest() and path.parent.name == path.name[:2]
        assert path.stat().st_mode & 0o777 == 0o640
        assert path.parent.stat().st_mode & 0o777 == 0o750
        if url.endswith(".js"):
            assert headers["Content-Type"].startswith("text/javascript")


def test_x_sendfile_for_attachments(prefork_files):
    """An uploaded attachment is stored by its SHA-1 and downloaded through X-Accel-Redirect."""
    port = prefork_files.opts["http_port"]
    payload = os.urandom(200 * 1024)
    status, _, body = request(port, "/fake/attachment", "POST", payload)
    assert status == 200, body
    info = json.loads(body)
    assert info["checksum"] == hashlib.sha1(payload).hexdigest() and info["size"] == len(payload)
    status, headers, body = request(port, info["url"])
    assert status == 200 and body == b""
    sha = info["checksum"]
    assert headers["X-Accel-Redirect"] == f"/web/filestore/{DB}/{sha[:2]}/{sha}"
    stored = Path(prefork_files.opts["data_dir"]) / "filestore" / DB / sha[:2] / sha
    assert stored.read_bytes() == payload
    assert request(port, "/web/content/" + "0" * 40)[0] == 404


def test_without_x_sendfile_the_bytes_come_from_odoo(cluster, tmp_path):  # noqa: F811
    """x_sendfile off: the same routes answer with the file's bytes and no redirect."""
    conf, opts = write_conf(tmp_path, cluster, db_name=DB + "_plain", dbfilter=f"^{DB}_plain$")
    assert run_fake("-c", conf, "-d", DB + "_plain", "-i", "base", "--stop-after-init").returncode == 0
    server = started(conf, opts, tmp_path / "odoo.log", children=0)
    try:
        payload = b"attachment bytes\n" * 100
        status, _, body = request(opts["http_port"], "/fake/attachment", "POST", payload)
        url = json.loads(body)["url"]
        status, headers, body = request(opts["http_port"], url)
        assert status == 200 and body == payload and "X-Accel-Redirect" not in headers
    finally:
        server.stop()


def fake_of_version(tmp_path, version):
    """A copy of the fake tree claiming another version (what the archive script does)."""
    tree = tmp_path / f"fake-{version}"
    shutil.copytree(FAKE, tree)
    release = tree / "odoo" / "release.py"
    release.write_text(release.read_text().replace('version = "19.0"', f'version = "{version}"'))
    return tree


def config_of(tree, *argv):
    code = ("import sys, json; sys.path.insert(0, sys.argv[1]); from fake_odoo.config import Config; "
            "c = Config(sys.argv[2:]); print(json.dumps({'warnings': c.warnings, 'demo': c.demo, "
            "'db_host': c['db_host'], 'logfile': c['logfile']}))")
    r = subprocess.run([sys.executable, "-c", code, str(tree), *map(str, argv)],
                       capture_output=True, text=True, timeout=30)
    return r.returncode, (json.loads(r.stdout) if r.returncode == 0 else r.stderr)


@pytest.mark.parametrize("version", ["17.0", "18.0", "19.0"])
def test_option_parsing_per_version(tmp_path, version):
    """19.0 skips a non-boolean option written as False, with Odoo's warning, and takes a
    boolean for --without-demo (warning for 'all'); 17.0/18.0 take both silently and
    load demo data unless told not to."""
    tree = FAKE if version == "19.0" else fake_of_version(tmp_path, version)
    conf = tmp_path / "odoo.conf"
    conf.write_text("[options]\ndb_host = False\nlogfile = False\ndb_user = odoo\n")
    code, out = config_of(tree, "-c", conf, "--without-demo=all")
    assert code == 0, out
    assert out["db_host"] == "" and out["logfile"] == "" and out["demo"] is False
    skipped = [w for w in out["warnings"] if "isn't a boolean option, skip" in w]
    if version == "19.0":
        assert sorted(w.split()[1] for w in skipped) == ["db_host", "logfile"]
        assert f"option db_host reads 'False' in the config file at {conf} but isn't a boolean option, skip" in skipped
        assert "option --without-demo: since 19.0, invalid boolean value: 'all', assume True" in out["warnings"]
        assert config_of(tree, "--without-demo=True")[1] == {"warnings": [], "demo": False, "db_host": "", "logfile": ""}
        assert config_of(tree)[1]["demo"] is False
    else:
        assert out["warnings"] == []
        assert config_of(tree)[1]["demo"] is True
        assert config_of(tree, "--without-demo=base,web")[1]["demo"] is False


def test_unknown_option_warned_like_odoo(tmp_path):
    conf = tmp_path / "odoo.conf"
    conf.write_text("[options]\nlongpolling_portt = 8072\n")
    code, out = config_of(FAKE, "-c", conf)
    assert code == 0, out
    assert out["warnings"] == [f"unknown option 'longpolling_portt' in the config file at {conf}, "
                               "option stored as-is, without parsing"]
