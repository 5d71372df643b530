"""The files odoo-pulumi writes to the server, rendered from settings and sizing.

Python decides (paths, ports, which options a version knows); the Jinja2 templates in
`templates/` only format. Pure: the same call gives the same bytes, so Pulumi sees a
change only when a decision changed. The operator's dry run (`python -m odoo_pulumi.cli
render`) writes these files as they are rendered: odoo.conf with ADMIN_PASSWD_SLOT,
which the server fills with the hash of the master password.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from odoo_pulumi.server_files import ServerFile
from odoo_pulumi.settings import Settings
from odoo_pulumi.sizing import Sizing
from odoo_pulumi.templating import environment, managed_header

HTTP_PORT = 8069
GEVENT_PORT = 8072
DATA_DIR = "/var/lib/odoo"
SOURCE_DIR = "/opt/odoo/src"
VENV_DIR = "/opt/odoo/venv"
ACME_ROOT = "/var/www/letsencrypt"

# Paths on the server, one per rendered file.
ODOO_CONF = "/etc/odoo/odoo.conf"
ODOO_UNIT = "/etc/systemd/system/odoo.service"
ODOO_SOCKET = "/etc/systemd/system/odoo.socket"
HTTP_INTERFACE = "127.0.0.1"  # Nginx is the only client; proxy_mode headers cannot be forged
NGINX_SITE = "/etc/nginx/sites-available/odoo"
NGINX_SITE_ACME = "/etc/nginx/sites-available/odoo-acme"

# Odoo's umask (the unit's UMask=, and the database initialisation's): group-readable,
# nothing for others, which the filestore's group (Nginx, x_sendfile) relies on.
ODOO_UMASK = "0027"

# System calls of systemd's @resources group that Odoo makes (odoo/service/server.py):
# the cron worker's os.nice(10) and the workers' resource.setrlimit(RLIMIT_AS/RLIMIT_CPU).
# The unit denies @resources and allows these back; nothing else of the group.
ODOO_RESOURCE_SYSCALLS = ("setpriority", "setrlimit", "prlimit64")

# Mozilla's "intermediate" TLS 1.2 suites (TLS 1.3 suites are not configurable and all
# strong): forward secrecy and AEAD only. The DHE suites of the profile are left out:
# they need a dhparam file, and every TLS 1.2 client has ECDHE.
TLS12_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
)

# Text Odoo sends, compressed by Nginx. Odoo 19 (Python's mimetypes) serves .js as
# text/javascript; older stacks say application/javascript.
GZIP_TYPES = (
    "text/css", "text/plain", "text/xml", "text/javascript", "application/javascript",
    "application/json", "application/xml", "image/svg+xml",
)


@dataclass(frozen=True)
class LoginLimit:
    """Nginx's limits on password logins (POST only), per browser and per address.

    Per browser (client address + Odoo's session cookie, which the login form always
    carries): 5 attempts at once, then 1 a minute, the pace of Odoo's own cooldown
    (`base.login_cooldown_after` 5 failures, `base.login_cooldown_duration` 60 s).
    People behind one NAT address have their own cookies, so they never share it.
    Per address, for clients that drop or forge the cookie: 120 at once, then 1 a
    second (3,600 an hour), above the whole of the largest office sized here (720
    users) logging in within one hour; each refused attempt spares Odoo a
    600,000-round PBKDF2 check. The server itself (loopback: the health step, local
    monitoring) is never counted.
    """

    client_burst: int = 5
    client_rate: str = "1r/m"
    address_burst: int = 120
    address_rate: str = "1r/s"


LOGIN_LIMIT = LoginLimit()

# odoo.conf's admin_passwd as rendered here: the odoo-config step replaces it on the server
# with the pbkdf2_sha512 hash of adminPassword (odoo_pulumi/adminhash.py keeps the hash
# already there when the password still verifies). The program never hashes: 600,000
# rounds would cost every preview ~0.6 s.
ADMIN_PASSWD_SLOT = "<odoo-pulumi: pbkdf2-sha512 hash of adminPassword, set on the server>"


_env = environment()


def postgres_tuning_path(s: Settings) -> str:
    return f"/etc/postgresql/{s.postgres_version}/main/conf.d/90-odoo-pulumi.conf"


def addons_path(s: Settings) -> list[str]:
    """Odoo's own addons for the install source, then the stack's extra paths."""
    if s.odoo_source == "deb":
        base = ["/usr/lib/python3/dist-packages/odoo/addons"]
    else:
        base = [f"{SOURCE_DIR}/odoo/addons", f"{SOURCE_DIR}/addons"]
    return base + list(s.addons_paths)


def exec_start(s: Settings) -> list[str]:
    """The deb installs /usr/bin/odoo for the system Python; sources run in the venv."""
    if s.odoo_source == "deb":
        return ["/usr/bin/python3", "/usr/bin/odoo", "-c", ODOO_CONF]
    return [f"{VENV_DIR}/bin/python3", f"{SOURCE_DIR}/odoo-bin", "-c", ODOO_CONF]


def without_demo_arg(version: str) -> str:
    """The command-line flag that initialises a database without demo data.

    17.0 and 18.0 take a list of modules (or "all") and load demo data by default; 19.0
    takes a boolean (demo data is off by default) and warns "invalid boolean value" for
    "all" (odoo/tools/config.py of each version).
    """
    return "--without-demo=all" if version < "19.0" else "--without-demo=True"


def _context(s: Settings, z: Sizing, **extra) -> dict:
    return {
        "s": s,
        "z": z,
        "pg": z.postgres,
        "header": managed_header(s.stack),
        "odoo_version": s.odoo_version,
        "http_port": HTTP_PORT,
        "http_interface": HTTP_INTERFACE,
        "gevent_port": GEVENT_PORT,
        "data_dir": DATA_DIR,
        **extra,
    }


def render_odoo_conf(s: Settings, z: Sizing, admin_passwd: str = ADMIN_PASSWD_SLOT) -> str:
    return _env.get_template("odoo.conf.j2").render(
        _context(
            s, z,
            admin_passwd=admin_passwd,
            dbfilter=f"^{s.database}$",
            addons_path=addons_path(s),
            # limit_memory_*_gevent exist from 18.0 on; 17.0 would warn "unknown option".
            gevent_memory_limits=s.odoo_version >= "18.0",
        )
    )


def socket_activation(s: Settings) -> bool:
    """Odoo 19 takes its HTTP socket from systemd (LISTEN_FDS, verified on 19.0 in
    prefork mode); earlier series are not known to, and bind it themselves."""
    return s.odoo_version >= "19.0"


def socket_unit(s: Settings) -> str:
    """The unit holding Odoo's HTTP port (odoo.socket), or "" when Odoo binds it itself."""
    return PurePosixPath(ODOO_SOCKET).name if socket_activation(s) else ""


def render_odoo_socket(s: Settings, z: Sizing) -> str:
    return _env.get_template("odoo.socket.j2").render(_context(s, z))


def render_odoo_unit(s: Settings, z: Sizing) -> str:
    return _env.get_template("odoo.service.j2").render(
        _context(
            s, z,
            socket_unit=socket_unit(s),
            exec_start=exec_start(s),
            writable_paths=[DATA_DIR],
            resources_syscalls=ODOO_RESOURCE_SYSCALLS,
            umask=ODOO_UMASK,
            postgres_unit=f"postgresql@{s.postgres_version}-main.service",
        )
    )


def render_nginx_site(s: Settings, z: Sizing, tls: bool) -> str:
    """The site. With a domain, Odoo gets that name as Host and X-Forwarded-Host (the
    only name Nginx serves it under); without one, Nginx's normalised $host."""
    return _env.get_template("nginx-site.conf.j2").render(
        _context(
            s, z,
            tls=tls,
            host_header=s.domain or "$host",
            login=LOGIN_LIMIT,
            tls12_ciphers=TLS12_CIPHERS,
            gzip_types=GZIP_TYPES,
            acme_root=ACME_ROOT,
            cert_dir=f"/etc/letsencrypt/live/{s.domain}" if s.domain else "",
        )
    )


def render_postgres_tuning(s: Settings, z: Sizing) -> str:
    return _env.get_template("postgresql-tuning.conf.j2").render(_context(s, z))


def server_files(s: Settings, z: Sizing) -> dict[str, ServerFile]:
    """Every file that lands on the server, keyed by a stable name.

    odoo.conf holds ADMIN_PASSWD_SLOT, which the odoo-config step fills on the server;
    it stays a secret file (0640, its step guarded): the server's copy holds the hash.
    With a domain, `nginx-site-acme` is the plain-HTTP site that serves the ACME
    challenge until the certificate exists.
    """
    files = {
        "odoo.conf": ServerFile(ODOO_CONF, render_odoo_conf(s, z), "root", "odoo", 0o640, True),
        "odoo.service": ServerFile(ODOO_UNIT, render_odoo_unit(s, z)),
        "nginx-site": ServerFile(NGINX_SITE, render_nginx_site(s, z, tls=bool(s.domain))),
        "postgresql-tuning": ServerFile(postgres_tuning_path(s), render_postgres_tuning(s, z), "postgres", "postgres", 0o644),
    }
    if socket_activation(s):
        files["odoo.socket"] = ServerFile(ODOO_SOCKET, render_odoo_socket(s, z))
    if s.domain:
        files["nginx-site-acme"] = ServerFile(NGINX_SITE_ACME, render_nginx_site(s, z, tls=False))
    return files
