"""The files odoo-pulumi writes to the server, rendered from settings and sizing.

Python decides (paths, ports, which options a version knows); the Jinja2 templates in
`templates/` only format. Pure: the same call gives the same bytes, so Pulumi sees a
change only when a decision changed. `python -m components.render --stack small --out
DIR` is the operator's dry run: every file at its absolute path under DIR, secrets
replaced by a visible placeholder.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import sys
from dataclasses import dataclass
from pathlib import Path

from components.settings import Settings, SettingsError, load_settings, read_stack_file, sizing_for
from components.sizing import Sizing
from components.templating import environment, managed_header

HTTP_PORT = 8069
GEVENT_PORT = 8072
DATA_DIR = "/var/lib/odoo"
SOURCE_DIR = "/opt/odoo/src"
VENV_DIR = "/opt/odoo/venv"
ACME_ROOT = "/var/www/letsencrypt"
SECRET_PLACEHOLDER = "<secret: set by pulumi from adminPassword>"
DRY_RUN_BUCKET = "bucket-created-by-pulumi"  # the aws target's backup bucket, named at deploy

# Paths on the server, one per rendered file.
ODOO_CONF = "/etc/odoo/odoo.conf"
ODOO_UNIT = "/etc/systemd/system/odoo.service"
NGINX_SITE = "/etc/nginx/sites-available/odoo"
NGINX_SITE_ACME = "/etc/nginx/sites-available/odoo-acme"

# passlib's pbkdf2_sha512, the scheme Odoo's CryptContext accepts for admin_passwd.
PBKDF2_ROUNDS = 600_000


@dataclass(frozen=True)
class ServerFile:
    path: str
    content: str
    owner: str = "root"
    group: str = "root"
    mode: int = 0o644
    secret: bool = False


_env = environment()


def _ab64(raw: bytes) -> str:
    """passlib's "adapted base64": '.' for '+', no padding."""
    return base64.b64encode(raw).decode().rstrip("=").replace("+", ".")


def admin_passwd_hash(password: str, stack: str, *, key: str) -> str:
    """Hash the master password as passlib's pbkdf2_sha512 for odoo.conf.

    Deterministic, so that the same password gives the same file on every run (a random
    salt would make each `pulumi up` rewrite the config and restart Odoo), yet not
    precomputable: the salt is an HMAC of the stack and the password under `key`, a
    secret of the stack (the program passes its SSH private key). Without the key, a
    guess cannot be hashed ahead of time for a known stack name; with a fixed public key
    (as before) it could. Rotating the SSH key re-salts the hash once (one rewrite of
    odoo.conf and one restart of Odoo at the next `up`).
    """
    if not password:
        raise SettingsError("setting adminPassword is empty: set a real secret")
    if not key:
        raise ValueError("admin_passwd_hash needs the stack's secret key material")
    salt_key = hashlib.sha256(b"odoo-pulumi admin_passwd salt\0" + key.strip().encode()).digest()
    salt = hmac.new(salt_key, f"{stack}\0{password}".encode(), hashlib.sha256).digest()[:16]
    dk = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ROUNDS)
    return f"$pbkdf2-sha512${PBKDF2_ROUNDS}${_ab64(salt)}${_ab64(dk)}"


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


def _context(s: Settings, z: Sizing, **extra) -> dict:
    return {
        "s": s,
        "z": z,
        "pg": z.postgres,
        "header": managed_header(s.stack),
        "summary": z.summary,
        "odoo_version": s.odoo_version,
        "http_port": HTTP_PORT,
        "gevent_port": GEVENT_PORT,
        "data_dir": DATA_DIR,
        **extra,
    }


def render_odoo_conf(s: Settings, z: Sizing, admin_passwd: str) -> str:
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


def render_odoo_unit(s: Settings, z: Sizing) -> str:
    return _env.get_template("odoo.service.j2").render(
        _context(
            s, z,
            exec_start=exec_start(s),
            writable_paths=[DATA_DIR],
            postgres_unit=f"postgresql@{s.postgres_version}-main.service",
        )
    )


def render_nginx_site(s: Settings, z: Sizing, tls: bool) -> str:
    return _env.get_template("nginx-site.conf.j2").render(
        _context(
            s, z,
            tls=tls,
            acme_root=ACME_ROOT,
            cert_dir=f"/etc/letsencrypt/live/{s.domain}" if s.domain else "",
        )
    )


def render_postgres_tuning(s: Settings, z: Sizing) -> str:
    return _env.get_template("postgresql-tuning.conf.j2").render(_context(s, z))


def server_files(s: Settings, z: Sizing, admin_passwd: str) -> dict[str, ServerFile]:
    """Every file that lands on the server, keyed by a stable name.

    `admin_passwd` is what odoo.conf holds: the hash from `admin_passwd_hash`, or the
    placeholder in a dry run. With a domain, `nginx-site-acme` is the plain-HTTP site
    that serves the ACME challenge until the certificate exists.
    """
    files = {
        "odoo.conf": ServerFile(ODOO_CONF, render_odoo_conf(s, z, admin_passwd), "root", "odoo", 0o640, True),
        "odoo.service": ServerFile(ODOO_UNIT, render_odoo_unit(s, z)),
        "nginx-site": ServerFile(NGINX_SITE, render_nginx_site(s, z, tls=bool(s.domain))),
        "postgresql-tuning": ServerFile(postgres_tuning_path(s), render_postgres_tuning(s, z), "postgres", "postgres", 0o644),
    }
    if s.domain:
        files["nginx-site-acme"] = ServerFile(NGINX_SITE_ACME, render_nginx_site(s, z, tls=False))
    return files


def write_tree(files: dict[str, ServerFile], out: Path) -> list[Path]:
    """Write files at their absolute paths under `out` (the dry run's layout)."""
    written = []
    for f in files.values():
        dest = out / f.path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(f.content)
        dest.chmod(f.mode)
        written.append(dest)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m components.render",
        description="Write every server file of a stack under DIR, secrets as placeholders.",
    )
    parser.add_argument("--stack", required=True, help="stack name: stacks/Pulumi.<stack>.yaml")
    parser.add_argument("--out", required=True, type=Path, help="directory to write the tree into")
    args = parser.parse_args(argv)
    try:
        raw = read_stack_file(args.stack)
        s = load_settings(raw, args.stack, secrets_present={"adminPassword", "sshPrivateKey"})
    except SettingsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    z = sizing_for(s)
    from components import backup  # backup renders with render's helpers: import late

    files = {**server_files(s, z, SECRET_PLACEHOLDER),
             **backup.server_files(s, **({"bucket": DRY_RUN_BUCKET, "region": "eu-west-1"}
                                         if s.target == "aws" else {}))}
    for path in write_tree(files, args.out):
        print(path)
    print(f"# {z.summary}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
