"""The restore drill: back up with the real unit on a real systemd server, lose
everything, restore, and prove nothing was lost.

On a fresh test host (testbed/scripts/testhost-up, torn down at the end) the step scripts
install what the backup needs, rendered exactly as `pulumi up` sends them: `wait`,
`base`, `postgresql`, then the user odoo as `odoo-install` creates it (Odoo itself is
not needed to back up its data), then the `backup` step, twice (the second run must
change nothing). A database owned by odoo gets tables, rows, an index using pg_trgm and
a filestore of files; `systemctl start odoo-backup.service` backs it up to the local
destination (standing in for S3); the database is dropped and the filestore deleted;
`odoo-restore` brings both back; row counts per table and the SHA-256 of every file
must be equal before and after. Then: restore refuses an existing database without
--force, --force replaces it while a stand-in Odoo service holds a connection (stopped
and started again), and a failing backup leaves a failed unit. Timings are printed.
"""

from __future__ import annotations

import re
import shlex
import time

import pytest

from odoo_pulumi import backup, steps
from odoo_pulumi.render import server_files
from odoo_pulumi.settings import load_settings, sizing_for
from tests.remote.test_steps_on_testhost import ADMIN_PASSWORD, ADMIN_USER_PASSWORD, SECRETS, StepRun, run_step, testhost  # noqa: F401

pytestmark = pytest.mark.drill

DB = "drill"
BACKUP_DIR = "/var/backups/odoo"
FILESTORE = f"/var/lib/odoo/filestore/{DB}"
TIMINGS: dict[str, float] = {}

# A database the way Odoo makes one, with a little of everything pg_dump must carry.
SCHEMA = """
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE TABLE res_partner (id serial PRIMARY KEY, name varchar NOT NULL, email varchar,
                          create_date timestamp DEFAULT now());
CREATE INDEX res_partner_name_trgm ON res_partner USING gin (name gin_trgm_ops);
CREATE TABLE sale_order (id serial PRIMARY KEY, partner_id int NOT NULL REFERENCES res_partner(id),
                         amount numeric(12, 2), note text);
CREATE TABLE ir_attachment (id serial PRIMARY KEY, res_model varchar, res_id int, store_fname varchar,
                            checksum varchar(40), file_size int);
CREATE VIEW sale_order_total AS SELECT partner_id, sum(amount) AS total FROM sale_order GROUP BY partner_id;
INSERT INTO res_partner (name, email) SELECT 'Partner ' || i, 'p' || i || '@example.com'
    FROM generate_series(1, 20000) i;
INSERT INTO sale_order (partner_id, amount, note)
    SELECT 1 + (i % 20000), (i * 7.31) % 10000, repeat(md5(i::text), 8) FROM generate_series(1, 50000) i;
INSERT INTO ir_attachment (res_model, res_id, store_fname, checksum, file_size)
    SELECT 'res.partner', i, 'x', md5(i::text), i FROM generate_series(1, 40) i;
"""


def settings(testhost):
    raw = {
        "users": 15, "target": "host", "host": testhost.host, "port": testhost.port,
        "sshUser": testhost.user, "odooVersion": "19.0", "odooSource": "git",
        "installWkhtmltopdf": False, "postgresVersion": 17, "firewall": False,
        "timezone": "Europe/Brussels", "backupDestination": BACKUP_DIR, "backupRetentionDays": 14,
    }
    return load_settings(raw, "drill", SECRETS)


def all_files(s):
    """render.server_files merged with backup.server_files, as __main__ will hand them over."""
    return {**server_files(s, sizing_for(s)), **backup.server_files(s)}


def backup_script(s, host: str) -> str:
    """The backup step as steps.render_scripts renders it for `pulumi up`."""
    return steps.render_scripts(s, all_files(s), host=host, admin_password=ADMIN_PASSWORD,
                                admin_user_password=ADMIN_USER_PASSWORD)["backup"]


def ok(run: StepRun) -> StepRun:
    assert run.returncode == 0, f"step {run.step} failed ({run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    assert run.changed is not None, run.stdout[-2000:]
    return run


def psql(testhost, sql: str, db: str = DB, user: str = "odoo") -> str:
    return testhost.sudo(f"runuser -u {user} -- psql -X -A -t -v ON_ERROR_STOP=1 -d {shlex.quote(db)} "
                         f"-c {shlex.quote(sql)}", timeout=600)


def row_counts(testhost) -> dict[str, int]:
    tables = psql(testhost, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").split()
    return {t: int(psql(testhost, f'SELECT count(*) FROM "{t}"')) for t in tables}


def file_sums(testhost) -> dict[str, str]:
    out = testhost.sudo(f"cd {FILESTORE} && find . -type f -print0 | sort -z | xargs -0 -r sha256sum")
    return {line[66:]: line[:64] for line in out.splitlines()}


def timed(name: str, fn, *args, **kw):
    t0 = time.monotonic()
    try:
        return fn(*args, **kw)
    finally:
        TIMINGS[name] = time.monotonic() - t0


@pytest.fixture(scope="module")
def drill(testhost):  # noqa: F811 (the fixture imported above)
    """The host provisioned for backups, with an Odoo-like database and filestore."""
    s = settings(testhost)
    scripts = steps.render_scripts(s, all_files(s), host=testhost.host, admin_password=ADMIN_PASSWORD, admin_user_password=ADMIN_USER_PASSWORD)
    t0 = time.monotonic()
    for name in ("wait", "base", "postgresql"):
        ok(run_step(testhost, s, name, scripts[name]))
    # The user odoo exactly as the odoo-install step creates it.
    testhost.sudo("id -u odoo >/dev/null 2>&1 || useradd --system --user-group --home-dir /var/lib/odoo "
                  "--no-create-home --shell /usr/sbin/nologin --comment 'Odoo (odoo-pulumi)' odoo; "
                  "install -d -o odoo -g odoo -m 0750 /var/lib/odoo /var/lib/odoo/filestore")
    TIMINGS["provision base+postgresql"] = time.monotonic() - t0
    script = backup_script(s, testhost.host)
    first = timed("backup step (first)", lambda: ok(run_step(testhost, s, "backup", script)))
    second = timed("backup step (second)", lambda: ok(run_step(testhost, s, "backup", script)))

    t0 = time.monotonic()
    create = f"CREATE DATABASE {DB} OWNER odoo TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C'"
    testhost.sudo(f"runuser -u postgres -- psql -X -v ON_ERROR_STOP=1 -c {shlex.quote(create)}")
    psql(testhost, SCHEMA)
    # A filestore as Odoo lays it out: <2 hex>/<sha1>, written by odoo, some large.
    testhost.sudo(
        f"runuser -u odoo -- sh -c 'set -e; for i in $(seq 1 40); do "
        f"h=$(printf %s $i | sha1sum | cut -c1-40); d={FILESTORE}/$(echo $h | cut -c1-2); mkdir -p $d; "
        f"head -c $((i * 7919)) /dev/urandom > $d/$h; done; "
        f"mkdir -p {FILESTORE}/ff; head -c 8388608 /dev/urandom > {FILESTORE}/ff/large-report.pdf'")
    TIMINGS["make database and filestore"] = time.monotonic() - t0
    yield {"settings": s, "first": first, "second": second, "before": row_counts(testhost),
           "files_before": file_sums(testhost)}
    print("\n--- drill timings")
    for name, seconds in TIMINGS.items():
        print(f"{name:<34} {seconds:6.1f} s")


def test_backup_step_installs_once_then_changes_nothing(testhost, drill):
    """First run writes the programs, the units, the 0700 directory and arms the timer;
    the second reports changed=0."""
    assert drill["first"].changed > 0, drill["first"].stdout
    assert drill["second"].changed == 0, drill["second"].stdout
    assert "configuration /etc/odoo/backup.conf ok" in drill["first"].stdout
    assert testhost.sudo("stat -c %U:%G:%a /var/backups/odoo /etc/odoo/backup.conf "
                         "/usr/local/sbin/odoo-backup /usr/local/sbin/odoo-restore").split() == [
        "root:root:700", "root:root:600", "root:root:755", "root:root:755"]
    assert testhost.sudo("systemctl is-enabled odoo-backup.timer; systemctl is-active odoo-backup.timer").split() \
        == ["enabled", "active"]
    assert "odoo-backup.timer" in testhost.sudo("systemctl list-timers --all --no-legend")
    assert testhost.run("cat /etc/odoo/backup.conf").returncode != 0, "the SSH user can read backup.conf"


def test_drill_backup_lose_everything_restore(testhost, drill):
    """The real unit backs up; the database and filestore are destroyed; odoo-restore
    brings back the same rows in every table and the same bytes in every file."""
    before, files_before = drill["before"], drill["files_before"]
    assert before == {"ir_attachment": 40, "res_partner": 20000, "sale_order": 50000}
    assert len(files_before) == 41

    r = timed("systemctl start odoo-backup", testhost.run, "sudo -n systemctl start odoo-backup.service", timeout=900)
    journal = testhost.sudo("journalctl -u odoo-backup.service --no-pager -o cat")
    assert r.returncode == 0, f"{r.stderr}\n{journal}"
    assert testhost.sudo("systemctl show -p Result --value odoo-backup.service") == "success"
    assert re.search(r"odoo-backup: done: 1 database\(s\) to /var/backups/odoo", journal), journal
    stamps = testhost.sudo(f"ls {BACKUP_DIR}/{DB}").split()
    assert len(stamps) == 1 and re.fullmatch(r"\d{8}T\d{6}Z", stamps[0])
    bdir = f"{BACKUP_DIR}/{DB}/{stamps[0]}"
    assert sorted(testhost.sudo(f"ls {bdir}").split()) == ["SHA256SUMS", f"{DB}.dump", "filestore.tar.gz",
                                                           "manifest.json"]
    assert testhost.sudo(f"cd {bdir} && sha256sum -c --quiet SHA256SUMS && echo verified") == "verified"
    print(f"\nbackup: {testhost.sudo(f'du -sh {bdir}')}; {journal.strip().splitlines()[-2]}")

    t0 = time.monotonic()
    testhost.sudo(f"runuser -u postgres -- dropdb {DB} && rm -rf {FILESTORE}")
    assert testhost.sudo(f"runuser -u postgres -- psql -XAt -c \"SELECT count(*) FROM pg_database "
                         f"WHERE datname = '{DB}'\"") == "0"
    assert testhost.run(f"sudo -n test -e {FILESTORE}").returncode != 0
    TIMINGS["drop database, delete filestore"] = time.monotonic() - t0

    r = timed("odoo-restore", testhost.run,
              f"sudo -n odoo-restore --from {bdir} --database {DB}", timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "checksums match" in r.stdout
    print(r.stdout.strip().splitlines()[-1])

    assert row_counts(testhost) == before
    assert file_sums(testhost) == files_before
    assert testhost.sudo(f"runuser -u postgres -- psql -XAt -c \"SELECT pg_get_userbyid(datdba) FROM pg_database "
                         f"WHERE datname = '{DB}'\"") == "odoo"
    assert psql(testhost, "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'") == "odoo"
    assert testhost.sudo(f"find {FILESTORE} ! -user odoo | wc -l") == "0"
    # The trigram index came back and works.
    assert psql(testhost, "SET enable_seqscan = off; EXPLAIN SELECT id FROM res_partner WHERE name % 'Partner 77'") \
        .count("res_partner_name_trgm") == 1
    drill["bdir"] = bdir


def test_restore_refuses_an_existing_database_without_force(testhost, drill):
    """Without --force an existing database is left exactly as it is (exit 3)."""
    bdir = drill.get("bdir") or pytest.skip("needs the backup of the drill above")
    psql(testhost, "INSERT INTO res_partner (name) VALUES ('written after the backup')")
    r = testhost.run(f"sudo -n odoo-restore --from {bdir} --database {DB}", timeout=300)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "refusing to overwrite" in r.stderr
    assert row_counts(testhost)["res_partner"] == drill["before"]["res_partner"] + 1


def test_force_stops_odoo_replaces_and_starts_it_again(testhost, drill):
    """--force with the database in use: a stand-in odoo.service holding a connection is
    stopped, the database replaced, the service started again."""
    bdir = drill.get("bdir") or pytest.skip("needs the backup of the drill above")
    if testhost.run("systemctl cat odoo.service >/dev/null 2>&1").returncode == 0:
        pytest.skip("this host has a real odoo.service (ODOO_PULUMI_TESTHOST): not replacing it with a stand-in")
    unit = (
        "[Unit]\nDescription=stand-in for Odoo: holds a connection to the database\n"
        "[Service]\nUser=odoo\n"
        f"ExecStart=/usr/bin/psql -X -d {DB} -c 'SELECT pg_sleep(3600)'\n"
    )
    testhost.sudo(f"printf %s {shlex.quote(unit)} > /etc/systemd/system/odoo.service && systemctl daemon-reload "
                  "&& systemctl start odoo.service && sleep 1")
    assert psql(testhost, f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{DB}' AND usename = 'odoo' "
                "AND query LIKE '%pg_sleep(3600)%' AND pid <> pg_backend_pid()") == "1"
    pid_before = testhost.sudo("systemctl show -p MainPID --value odoo.service")
    r = timed("odoo-restore --force", testhost.run,
              f"sudo -n odoo-restore --from {bdir} --database {DB} --force", timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "stopping odoo.service" in r.stdout and "started odoo.service" in r.stdout
    assert row_counts(testhost) == drill["before"], "the row written after the backup is gone"
    assert file_sums(testhost) == drill["files_before"]
    assert testhost.sudo("systemctl is-active odoo.service") == "active"
    assert testhost.sudo("systemctl show -p MainPID --value odoo.service") != pid_before
    testhost.sudo("systemctl stop odoo.service; rm -f /etc/systemd/system/odoo.service; systemctl daemon-reload")
    leftovers = testhost.sudo("runuser -u postgres -- psql -XAt -c \"SELECT count(*) FROM pg_database "
                              "WHERE datname LIKE 'odoo_restore_%'\"")
    assert leftovers == "0"
    assert not [n for n in testhost.sudo("ls -A /var/lib/odoo/filestore").split() if n.startswith(".")], \
        "a scratch or replaced filestore directory was left behind"


def test_a_failing_backup_is_a_failed_unit(testhost, drill):
    """PostgreSQL down: the unit fails (non-zero, Result not success, systemctl says
    failed) and the journal says why; the next run after it is back succeeds."""
    s = drill["settings"]
    pg_unit = f"postgresql@{s.postgres_version}-main"
    testhost.sudo(f"systemctl stop {pg_unit}")
    try:
        r = testhost.run("sudo -n systemctl start odoo-backup.service", timeout=300)
        assert r.returncode != 0
        assert testhost.run("sudo -n systemctl is-failed --quiet odoo-backup.service").returncode == 0
        journal = testhost.sudo("journalctl -u odoo-backup.service --no-pager -o cat -n 20")
        assert "cannot list the databases" in journal, journal
    finally:
        testhost.sudo(f"systemctl start {pg_unit} && systemctl reset-failed odoo-backup.service")
    for _ in range(30):
        if testhost.run("sudo -n runuser -u postgres -- pg_isready -q").returncode == 0:
            break
        time.sleep(1)
    r = testhost.run("sudo -n systemctl start odoo-backup.service", timeout=900)
    assert r.returncode == 0, testhost.sudo("journalctl -u odoo-backup.service --no-pager -o cat -n 20")
    assert len(testhost.sudo(f"ls {BACKUP_DIR}/{DB}").split()) == 2
    print("\n" + testhost.sudo("systemd-analyze security odoo-backup.service --no-pager | tail -n 1"))
