"""Rendered server files: the lines that matter for a production Odoo behind Nginx."""

import configparser
import re
import subprocess
import sys
from pathlib import Path

import pytest

from odoo_pulumi import render
from odoo_pulumi.settings import sizing_for
from tests.conftest import host_settings, stack_settings

ROOT = Path(__file__).resolve().parent.parent


def conf(s, z, pw="$pbkdf2-sha512$x"):
    p = configparser.ConfigParser(interpolation=None)
    p.read_string(render.render_odoo_conf(s, z, pw))
    return p["options"]


@pytest.mark.parametrize("version", ["17.0", "18.0", "19.0"])
def test_odoo_conf_per_version(version):
    """Only options the version knows: gevent_port always, never longpolling_port;
    the _gevent memory limits from 18.0 on."""
    s = host_settings(odooVersion=version, users=60)
    z = sizing_for(s)
    o = conf(s, z)
    assert "longpolling_port" not in o and o["gevent_port"] == "8072"
    assert ("limit_memory_soft_gevent" in o) == (version != "17.0")
    assert o["proxy_mode"] == "True" and o["http_interface"] == "127.0.0.1"
    assert o["list_db"] == "False" and o["dbfilter"] == "^odoo$"
    assert o["data_dir"] == "/var/lib/odoo" and o["x_sendfile"] == "True"
    assert o["db_user"] == "odoo"
    for unset in ("db_host", "db_port", "db_password", "logfile"):  # 19.0 warns about "False"
        assert unset not in o, unset
    assert int(o["workers"]) == z.workers == 8 and int(o["max_cron_threads"]) == 1
    assert int(o["limit_memory_hard"]) == z.limit_memory_hard
    assert int(o["limit_time_real"]) == z.limit_time_real
    assert int(o["db_maxconn"]) == z.db_maxconn and int(o["db_maxconn_gevent"]) == z.db_maxconn_gevent


def test_addons_path_per_source(tmp_path):
    """Decisions in Python: the source decides Odoo's own addons, extra paths follow."""
    deb = conf(*(lambda s: (s, sizing_for(s)))(host_settings(addonsPaths=["/opt/custom"])))
    assert deb["addons_path"] == "/usr/lib/python3/dist-packages/odoo/addons,/opt/custom"
    archive = tmp_path / "odoo.tar.gz"
    archive.write_bytes(b"x")
    s = host_settings(odooSource="archive", odooArchive=str(archive))
    assert conf(s, sizing_for(s))["addons_path"] == "/opt/odoo/src/odoo/addons,/opt/odoo/src/addons"
    unit = render.render_odoo_unit(s, sizing_for(s))
    assert "ExecStart=/opt/odoo/venv/bin/python3 /opt/odoo/src/odoo-bin -c /etc/odoo/odoo.conf" in unit


def test_odoo_conf_holds_the_slot_never_a_password_or_hash(small):
    """The program renders odoo.conf without hashing (issue 13): admin_passwd is the slot
    the odoo-config step fills on the server with the pbkdf2_sha512 hash."""
    s, z = small
    text = render.server_files(s, z)["odoo.conf"].content
    assert conf(s, z, render.ADMIN_PASSWD_SLOT)["admin_passwd"] == render.ADMIN_PASSWD_SLOT
    assert f"admin_passwd = {render.ADMIN_PASSWD_SLOT}\n" in text and "$pbkdf2" not in text


def test_odoo_conf_is_secret_and_private(small):
    s, z = small
    f = render.server_files(s, z)["odoo.conf"]
    assert (f.path, f.owner, f.group, f.mode, f.secret) == ("/etc/odoo/odoo.conf", "root", "odoo", 0o640, True)


def test_systemd_unit(small):
    s, z = small
    unit = render.render_odoo_unit(s, z)
    for line in ("User=odoo", "Wants=network-online.target postgresql.service", "Restart=on-failure",
                 "WantedBy=multi-user.target", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 "ProtectHome=yes", "PrivateTmp=yes", "ReadWritePaths=/var/lib/odoo",
                 "ExecStart=/usr/bin/python3 /usr/bin/odoo -c /etc/odoo/odoo.conf"):
        assert line in unit.splitlines(), line
    assert re.search(r"^After=.*postgresql@16-main\.service", unit, re.M)


def nginx_locations(site: str) -> dict[str, str]:
    return {m.group(1).strip(): m.group(2) for m in re.finditer(r"location ([^{]+)\{(.*?)\n    \}", site, re.S)}


def test_nginx_websocket_and_proxy_headers(small):
    """The pitfalls operators hit: websocket to the gevent port with HTTP/1.1 and the
    upgrade headers; X-Forwarded-* everywhere (proxy_mode needs X-Forwarded-Host).
    With a domain, Odoo is told that name, never the client's Host header, and the
    client address Nginx saw, never a client-supplied X-Forwarded-For (Odoo logs it
    and counts login failures by it)."""
    s, z = small
    site = render.render_nginx_site(s, z, tls=True)
    loc = nginx_locations(site)
    ws = loc["/websocket"]
    assert "proxy_pass http://odoochat;" in ws and "proxy_http_version 1.1;" in ws
    assert "proxy_set_header Upgrade $http_upgrade;" in ws
    assert "proxy_set_header Connection $connection_upgrade;" in ws
    assert "server 127.0.0.1:8072;" in site and "server 127.0.0.1:8069;" in site
    login = next(k for k in loc if "session/authenticate" in k)
    for name in ("/websocket", "/", login):
        for h in (f"Host {s.domain}", f"X-Forwarded-Host {s.domain}", "X-Forwarded-For $remote_addr",
                  "X-Forwarded-Proto $scheme", "X-Real-IP $remote_addr"):
            assert f"proxy_set_header {h};" in loc[name], (name, h)
    assert "$http_host" not in site and "$proxy_add_x_forwarded_for" not in site
    fs = loc["/web/filestore/"]
    assert "internal;" in fs and "alias /var/lib/odoo/filestore/;" in fs


def test_nginx_timeouts_cover_odoo_limit(small):
    """Invariant: Nginx waits at least limit_time_real so Odoo's own limit acts first."""
    s, z = small
    site = render.render_nginx_site(s, z, tls=True)
    for d in ("proxy_read_timeout", "proxy_send_timeout"):
        value = int(re.search(rf"{d} (\d+)s;", site).group(1))
        assert value >= z.limit_time_real


def test_nginx_tls_site(small):
    s, z = small
    site = render.render_nginx_site(s, z, tls=True)
    assert f"return 301 https://{s.domain}$request_uri;" in site
    assert "Strict-Transport-Security" in site and "proxy_cookie_flags session_id samesite=lax secure;" in site
    assert f"ssl_certificate /etc/letsencrypt/live/{s.domain}/fullchain.pem;" in site
    assert "client_max_body_size 128m;" in site and "gzip on;" in site
    acme = render.render_nginx_site(s, z, tls=False)
    assert "ssl_certificate" not in acme and "/.well-known/acme-challenge/" in acme
    assert "Strict-Transport-Security" not in acme


def test_nginx_without_domain_serves_http():
    s = host_settings()
    site = render.render_nginx_site(s, sizing_for(s), tls=False)
    assert "listen 80 default_server;" in site and "443" not in site and "return 301" not in site
    assert "proxy_set_header Host $host;" in site and "return 444;" not in site


def test_nginx_unknown_names_get_nothing(small):
    """With a domain, a default server closes connections for any other name (444) and
    refuses TLS handshakes for other SNI names; before the certificate exists too."""
    s, z = small
    site = render.render_nginx_site(s, z, tls=True)
    default80 = site.split("listen 80 default_server;")[1].split("\n}")[0]
    assert "return 444;" in default80
    default443 = site.split("listen 443 ssl http2 default_server;")[1].split("\n}\n")[0]
    assert "ssl_reject_handshake on;" in default443 and "ssl_protocols TLSv1.2 TLSv1.3;" in default443
    acme = render.render_nginx_site(s, z, tls=False)
    assert "listen 80 default_server;" in acme and "return 444;" in acme and "ssl_reject_handshake" not in acme


def test_nginx_tls_profile(small):
    """TLS 1.2 and 1.3 only, TLS 1.2 with forward-secret AEAD suites only, no stapling
    (Let's Encrypt runs no OCSP responder), no version in answers."""
    s, z = small
    site = render.render_nginx_site(s, z, tls=True)
    assert site.count("ssl_protocols TLSv1.2 TLSv1.3;") == 2
    ciphers = re.search(r"ssl_ciphers (\S+);", site).group(1).split(":")
    assert ciphers and all(c.startswith("ECDHE-") and ("GCM" in c or "CHACHA20" in c) for c in ciphers)
    assert "ssl_stapling" not in site
    assert site.count("server {") == site.count("server_tokens off;")


def test_nginx_login_limits_and_database_manager(small):
    """The login paths are rate-limited (POST only), the database manager refused,
    both also behind a language prefix; text/javascript is compressed."""
    s, z = small
    site = render.render_nginx_site(s, z, tls=True)
    loc = nginx_locations(site)
    login = next(k for k in loc if "session/authenticate" in k)
    assert "limit_req zone=odoo_login_client burst=4 nodelay;" in loc[login]
    assert "limit_req zone=odoo_login_address burst=119 nodelay;" in loc[login]
    assert "limit_req_status 429;" in loc[login]
    db = next(k for k in loc if "/web/database" in k)
    assert "return 403;" in loc[db] and "proxy_pass" not in loc[db]
    pattern = re.compile(db.split(None, 1)[1])
    for path in ("/web/database/manager", "/fr/web/database/drop", "/web/database"):
        assert pattern.search(path), path
    pattern = re.compile(login.split(None, 1)[1])
    for path in ("/web/login", "/fr_BE/web/login", "/web/login/totp", "/web/session/authenticate",
                 "/xmlrpc/2/common", "/xmlrpc/common"):
        assert pattern.search(path), path
    for path in ("/web/login_successful", "/web", "/odoo", "/jsonrpc"):
        assert not pattern.search(path), path
    assert "text/javascript" in re.search(r"gzip_types ([^;]+);", site).group(1).split()


def test_postgres_tuning(small):
    s, z = small
    text = render.render_postgres_tuning(s, z)
    assert "listen_addresses = 'localhost'" in text
    assert f"max_connections = {z.postgres.max_connections}" in text
    assert f"shared_buffers = {z.postgres.shared_buffers}MB" in text
    f = render.server_files(s, z)["postgresql-tuning"]
    assert f.path == "/etc/postgresql/16/main/conf.d/90-odoo-pulumi.conf"


def test_render_is_deterministic(small):
    s, z = small
    assert render.server_files(s, z) == render.server_files(s, z)


def test_render_cli_writes_the_tree(tmp_path):
    """The operator's dry run: every file at its absolute path, secret as a placeholder."""
    out = subprocess.run([sys.executable, "-m", "odoo_pulumi.cli", "render", "--stack", "large", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    conf_path = tmp_path / "etc/odoo/odoo.conf"
    assert str(conf_path) in out.stdout
    text = conf_path.read_text()
    assert f"admin_passwd = {render.ADMIN_PASSWD_SLOT}" in text
    assert oct(conf_path.stat().st_mode & 0o777) == "0o640"
    for rel in ("etc/systemd/system/odoo.service", "etc/nginx/sites-available/odoo",
                "etc/nginx/sites-available/odoo-acme", "etc/postgresql/16/main/conf.d/90-odoo-pulumi.conf",
                "usr/local/sbin/odoo-backup", "usr/local/sbin/odoo-restore",
                "etc/systemd/system/odoo-backup.timer"):
        assert (tmp_path / rel).is_file(), rel
    bad = subprocess.run([sys.executable, "-m", "odoo_pulumi.cli", "render", "--stack", "nope", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "stacks: large" in bad.stderr


def test_users_change_within_a_type_touches_nothing_and_a_limit_only_odoo_conf():
    """Change scoping starts here: 15 -> 19 users on the same host need 3 and 4 workers,
    and the host runs the 4 its cores allow either way, so no server file differs; a
    time limit rewrites odoo.conf alone (Nginx, the unit, PostgreSQL's tuning stay
    byte-identical)."""
    a, b = host_settings(users=15), host_settings(users=19)
    za, zb = sizing_for(a), sizing_for(b)
    assert za.instance_type == zb.instance_type and za.workers_needed != zb.workers_needed
    fa, fb = render.server_files(a, za), render.server_files(b, zb)
    assert [k for k in fa if fa[k] != fb[k]] == []
    c = host_settings(users=15, limitTimeCpu=900)
    fc = render.server_files(c, sizing_for(c))
    assert [k for k in fa if fa[k] != fc[k]] == ["odoo.conf"]


@pytest.mark.parametrize("version", ["17.0", "18.0", "19.0"])
def test_odoo_19_takes_its_http_socket_from_systemd(version):
    """Odoo 19 in prefork mode serves on systemd's socket (LISTEN_FDS; verified on real
    19.0): odoo.socket listens where odoo.conf says, with the sizing's queue, and the
    unit requires it. 17.0 and 18.0 are not known to, and keep binding the port."""
    s = host_settings(odooVersion=version, users=60)
    z = sizing_for(s)
    files = render.server_files(s, z)
    unit = files["odoo.service"].content
    if version < "19.0":
        assert "odoo.socket" not in files and "odoo.socket" not in unit
        return
    sock = configparser.ConfigParser(interpolation=None)
    sock.read_string(files["odoo.socket"].content)
    odoo = configparser.ConfigParser(interpolation=None)
    odoo.read_string(files["odoo.conf"].content)
    o = odoo["options"]
    assert sock["Socket"]["ListenStream"] == f"{o['http_interface']}:{o['http_port']}" == "127.0.0.1:8069"
    assert int(sock["Socket"]["Backlog"]) == z.listen_backlog > 8 * int(o["workers"])
    assert sock["Socket"]["Service"] == "odoo.service"
    assert files["odoo.socket"].path == "/etc/systemd/system/odoo.socket"
    assert re.search(r"^Requires=odoo\.socket$", unit, re.M) and re.search(r"^After=odoo\.socket$", unit, re.M)
