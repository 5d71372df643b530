"""Bad input stops everything before a resource exists, with one message that names
the setting, the value and what is allowed."""

import pytest

from odoo_pulumi import sizing as sizing_mod
from odoo_pulumi.settings import (SettingsError, declared_config, load_settings, read_stack_file)

SECRETS = {"adminPassword", "adminUserPassword", "sshPrivateKey"}
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests operator@test"


def host_raw(**over):
    raw = {"users": 15, "target": "host", "host": "10.0.0.5", "adminCidrs": ["10.0.0.1/32"]}
    raw.update(over)
    return raw


def aws_raw(**over):
    raw = {"users": 15, "target": "aws", "sshPublicKey": KEY, "adminCidrs": ["203.0.113.0/24"]}
    raw.update(over)
    return raw


def test_stack_files_load():
    """The shipped stacks are valid: small about 15 users, large about 150."""
    small = load_settings(read_stack_file("small"), "small", SECRETS)
    large = load_settings(read_stack_file("large"), "large", SECRETS)
    assert (small.users, large.users) == (15, 150)
    assert large.production and not small.production


def test_defaults_come_from_pulumi_yaml():
    """Pulumi.yaml is the one declaration: a key left out takes its declared default."""
    s = load_settings(host_raw(), "t", SECRETS)
    d = declared_config()
    assert s.odoo_version == d["odooVersion"]["default"] == "19.0"
    assert s.users_per_worker == d["usersPerWorker"]["default"]
    assert s.port == d["port"]["default"] and s.database == d["database"]["default"]


def test_engine_strings_are_coerced():
    """The engine hands every value over as a string; arrays as JSON."""
    s = load_settings(host_raw(users="60", firewall="false", adminCidrs="[]", addonsPaths='["/opt/addons"]'), "t", SECRETS)
    assert s.users == 60 and s.firewall is False and s.addons_paths == ("/opt/addons",)


@pytest.mark.parametrize(
    "over, key, allowed",
    [
        ({"users": 0}, "users", "allowed 1..720"),
        ({"users": -3}, "users", "allowed 1..720"),
        ({"users": "sixty"}, "users", "whole number"),
        ({"users": "1e9"}, "users", "whole number"),
        ({"users": 10**9}, "users", "more needs more than one VM"),
        ({"users": True}, "users", "whole number"),
        ({"odooVersion": "16.0"}, "odooVersion", "17.0, 18.0, 19.0"),
        ({"odooSource": "pip"}, "odooSource", "deb, git, archive"),
        ({"domain": "not a domain"}, "domain", "host name"),
        ({"domain": "erp.example.com", "letsencryptEmail": "nobody"}, "letsencryptEmail", "e-mail"),
        ({"domain": "erp.example.com"}, "letsencryptEmail", "required with domain"),
        ({"instanceType": "x1.huge"}, "instanceType", "types that fit users=15: t4g.medium"),
        ({"instanceType": "t3.small", "users": 150}, "users", "too small"),
        ({"port": 70000}, "port", "1..65535"),
        ({"database": "Odoo-Prod"}, "database", "lowercase"),
        ({"timezone": "Mars/Olympus Mons"}, "timezone", "Area/City"),
        ({"addonsPaths": ["relative/path"]}, "addonsPaths", "absolute path"),
        ({"addonsPaths": "not json"}, "addonsPaths", "list of strings"),
        ({"firewall": "maybe"}, "firewall", "true or false"),
        ({"postgresVersion": 12}, "postgresVersion", "15, 16, 17"),
        ({"target": "gcp"}, "target", "aws, host"),
        ({"host": ""}, "host", "required with target=host"),
        ({"odooSource": "archive"}, "odooArchive", "required with odooSource=archive"),
        ({"odooSource": "archive", "odooArchive": "/nonexistent/odoo.tar.gz"}, "odooArchive", "no such file"),
        ({"usersPerWorker": 0}, "usersPerWorker", "1..50"),
        ({"hostVcpus": 2}, "hostMemoryMiB", "together"),
        ({"hostVcpus": 3, "hostMemoryMiB": 8192, "hostThreadsPerCore": 2}, "hostVcpus", "multiple of hostThreadsPerCore"),
        ({"hostThreadsPerCore": 0}, "hostThreadsPerCore", "1..8"),
        ({"fullWorkerCount": "yes"}, "fullWorkerCount", "true or false"),
        ({"instanceType": "c7g.xlarge", "users": 60, "fullWorkerCount": True}, "users", "too small"),
        ({"hostVcpus": 2, "hostMemoryMiB": 2048, "users": 30}, "users", "existing host is too small"),
        ({"backupDestination": "relative"}, "backupDestination", "absolute directory"),
        ({"backupDestination": "/var"}, "backupDestination", "directory of its own"),
        ({"backupDestination": "/var/lib/odoo/backups"}, "backupDestination", "directory of its own"),
    ],
)
def test_bad_value_names_key_value_and_allowed(over, key, allowed):
    with pytest.raises(SettingsError) as e:
        load_settings(host_raw(**over), "t", SECRETS)
    msg = str(e.value)
    assert f"setting {key}" in msg and allowed in msg, msg


@pytest.mark.parametrize(
    "over, key, allowed",
    [
        ({"sshPublicKey": ""}, "sshPublicKey", "required with target=aws"),
        ({"sshPublicKey": "hello"}, "sshPublicKey", "OpenSSH public key"),
        ({"adminCidrs": []}, "adminCidrs", "allowSshFromAnywhere"),
        ({"adminCidrs": ["300.1.1.1/8"]}, "adminCidrs", "CIDR"),
        ({"ami": "ubuntu"}, "ami", "AMI id"),
        ({"hostedZoneId": "Z123"}, "hostedZoneId", "needs a domain"),
        ({"dataVolumeGiB": 5}, "dataVolumeGiB", "10..16384"),
        ({"production": True}, "arch", "must pin x86_64 or arm64"),
        ({"sshUser": "admin"}, "sshUser", "logs in as ubuntu"),
        ({"port": 2222}, "port", "logs in as ubuntu"),
    ],
)
def test_bad_aws_values(over, key, allowed):
    with pytest.raises(SettingsError) as e:
        load_settings(aws_raw(**over), "t", SECRETS)
    assert f"setting {key}" in str(e.value) and allowed in str(e.value), str(e.value)


def test_unknown_key_is_a_typo_not_ignored():
    """`user: 60` instead of `users: 60` must not silently deploy the default."""
    with pytest.raises(SettingsError, match="unknown setting.*user in stack.*did you mean users?"):
        load_settings(host_raw(user=60), "t", SECRETS)
    with pytest.raises(SettingsError, match="unknown setting.*zzz in stack.*allowed: .*users"):
        load_settings(host_raw(zzz=1), "t", SECRETS)


def test_missing_users_is_required():
    raw = host_raw()
    del raw["users"]
    with pytest.raises(SettingsError, match="setting users is required"):
        load_settings(raw, "t", SECRETS)


def test_missing_or_plain_secrets():
    """The admin password must exist and be a secret, never a plain value."""
    with pytest.raises(SettingsError, match="adminPassword is required and must be a secret"):
        load_settings(host_raw(), "t", {"sshPrivateKey"})
    with pytest.raises(SettingsError, match="adminPassword must be stored as a secret"):
        load_settings(host_raw(adminPassword="hunter2"), "t", SECRETS)
    ok = load_settings(host_raw(adminPassword={"secure": "v1:abc"}), "t", SECRETS)
    assert not hasattr(ok, "admin_password")  # secrets never enter Settings


def test_existing_host_is_sized_as_it_is():
    """target host with its real size: workers follow its vCPUs, PostgreSQL its memory."""
    from odoo_pulumi.settings import sizing_for
    s = load_settings(host_raw(users=60, hostVcpus=4, hostMemoryMiB=8192), "t", SECRETS)
    z = sizing_for(s)
    assert (z.vcpus, z.memory_mib, z.workers, z.instance_type) == (4, 8192, 8, "existing-host")
    assert "existing host" in z.summary
    ht = sizing_for(load_settings(host_raw(users=60, hostVcpus=8, hostMemoryMiB=16384, hostThreadsPerCore=2),
                                  "t", SECRETS))
    assert (ht.vcpus, ht.cores, ht.workers) == (8, 4, 8)  # Hyper-Threading: 4 cores, 8 + 1
    full = sizing_for(load_settings(host_raw(users=60, hostVcpus=8, hostMemoryMiB=16384,
                                             fullWorkerCount=True), "t", SECRETS))
    assert full.workers_needed == 10 and full.capacity_share_percent == 100
    assert full.workers == 16  # the 8 cores allow 16 and the 16 GiB hold them


# --- issue 11: the shared table of bad settings, through load_settings ---------------------------

from tests.bad_settings import CASES, apply_to_stack_text, check_message  # noqa: E402


def local_raw_for(case, tmp_path):
    """The `local` stack file with the case written in, read as the program reads it."""
    from tests.conftest import LOCAL_STACK
    (tmp_path / "stacks").mkdir(exist_ok=True)
    text = apply_to_stack_text(case, LOCAL_STACK.read_text())
    (tmp_path / "stacks" / "Pulumi.local.yaml").write_text(text)
    raw = read_stack_file("local", root=tmp_path)
    archive = tmp_path / "odoo.tar.gz"
    archive.write_bytes(b"stand-in")
    raw.setdefault("odooArchive", str(archive))
    return raw


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_settings_table(case, tmp_path):
    """Each bad setting of the table: one line naming the key, the value cut, what is allowed."""
    raw = local_raw_for(case, tmp_path)
    secrets = {"adminPassword": "a-Strong-Master-Passw0rd-for-tests", **case.secret}
    with pytest.raises(SettingsError) as e:
        load_settings(raw, "local", SECRETS, secret_values=secrets)
    check_message(case, str(e.value))


def test_the_local_stack_itself_is_accepted(tmp_path):
    """The table's base is valid: each case fails for its own reason only."""
    from tests.bad_settings import Bad
    raw = local_raw_for(Bad("none", "users", ""), tmp_path)
    s = load_settings(raw, "local", SECRETS, secret_values={"adminPassword": "a-Strong-Master-Passw0rd-for-tests"})
    assert s.admin_cidrs == ("10.213.0.1/32",) and s.firewall


def test_stack_file_scalars_are_read_as_written(tmp_path):
    """PyYAML would read `users: 015` as 13 and `firewall: yes` as true; the engine hands
    the program the text. The stack file reader keeps the text, so both paths agree."""
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.t.yaml").write_text(
        "config:\n  odoo-pulumi:users: 015\n  odoo-pulumi:firewall: yes\n  odoo-pulumi:adminCidrs: [10.0.0.1/32]\n")
    raw = read_stack_file("t", root=tmp_path)
    assert raw == {"users": "015", "firewall": "yes", "adminCidrs": ["10.0.0.1/32"]}


@pytest.mark.parametrize("cidrs, wide", [
    (["0.0.0.0/1", "128.0.0.0/1"], True),
    (["10.0.0.0/8"], False),  # exactly 1/256: the largest set still taken as admin ranges
    (["10.0.0.0/8", "11.0.0.0/32"], True),
    (["203.0.113.0/24", "2001:db8::/32"], False),
    (["2000::/3"], True),
    (["::/0"], True),
    ([], False),
])
def test_admin_ranges_are_judged_as_a_union(cidrs, wide):
    from odoo_pulumi.checks import wide_ranges
    assert bool(wide_ranges(cidrs)) is wide


@pytest.mark.parametrize("ref", ["19.0", "main", "refs/heads/19.0", "feature/x-y_z", "0123456789abcdef",
                                 "v17.0+e"])
def test_good_git_refs_pass(ref):
    from odoo_pulumi.checks import bad_git_ref
    assert bad_git_ref(ref) is None


@pytest.mark.parametrize("ref", ["-x", "--no-tags", "a..b", "a b", "x.lock", "a/.b", "a/", "a//b", "@", "a@{1}",
                                 "a~1", "a^", "a:b", "a?", "a*", "a[", "a\\b", "a."])
def test_bad_git_refs_refused(ref):
    from odoo_pulumi.checks import bad_git_ref
    assert bad_git_ref(ref)


def test_strong_secret_passes_and_no_message_repeats_a_secret():
    from odoo_pulumi.checks import weak_secret
    assert weak_secret("correct-horse-battery-staple") is None
    for bad in ("", "admin", "ODOO", "Admin2024!", "passwordpassword", "aaaaaaaaaaaaaaaaaaaa", "abababababababab1"):
        why = weak_secret(bad)
        assert why and (not bad or bad.lower() not in why.lower())


@pytest.mark.parametrize("change, key", [
    ({"limit_time_cpu": 1300}, "limitTimeCpu"),
    ({"limit_time_real_cron": 600}, "limitTimeReal"),
    ({"limit_memory_soft": 3 << 30}, "limit_memory_soft"),
    ({"limit_memory_soft_gevent": 3 << 30}, "limit_memory_soft_gevent"),
    ({"proxy_timeout": 1200}, "limitTimeReal"),
])
def test_every_limit_pair_is_cross_checked(change, key):
    """Issue 11.10: CPU <= wall time <= cron wall time, soft <= hard memory (HTTP and
    gevent), Nginx's timeouts above Odoo's: whatever sets them (today the sizing derives
    all but the first two), a crossed pair is refused by name."""
    import dataclasses
    from odoo_pulumi.settings import check_limit_pairs, sizing_for
    z = sizing_for(load_settings(host_raw(), "t", SECRETS))
    check_limit_pairs(z)
    with pytest.raises(SettingsError, match=f"setting {key}="):
        check_limit_pairs(dataclasses.replace(z, **change))


# --- issue 12: every fact once --------------------------------------------------------------------


@pytest.mark.parametrize("upw, full, users, ok", [
    (10, False, 1000, True),  # 10 per worker: 120 workers carry 1200 at 100 %, 1500 at 80 %
    (10, False, 1200, True),
    (3, False, 361, False),  # 3 per worker: at most 360 at 80 %
    (3, False, 360, True),
    (6, True, 577, False),  # the full count: 96 workers x 6 = 576
])
def test_users_limit_follows_users_per_worker(upw, full, users, ok):
    """The users ceiling is the sizing's at the stack's own usersPerWorker and share,
    not at the default 6 per worker: 1000 users at 10 per worker fit one VM."""
    raw = aws_raw(users=users, usersPerWorker=upw, fullWorkerCount=full)
    top = sizing_mod.max_users(upw, full)
    assert (users <= top) == ok
    if ok:
        assert load_settings(raw, "t", SECRETS).users == users
        return
    with pytest.raises(SettingsError) as e:
        load_settings(raw, "t", SECRETS)
    assert str(e.value).startswith(f"setting users={users} is invalid: allowed 1..{top} concurrent users at ")
    assert (f"usersPerWorker={upw}" in str(e.value)) == (upw != 6)
    assert ("fullWorkerCount" in str(e.value)) == full


def test_every_declared_key_has_one_row():
    """Pulumi.yaml declares a key, the Settings table holds its row: a key without a row
    (or a row without a key, or of another type) stops the import instead of being
    silently ignored."""
    from odoo_pulumi import settings as S
    declared = {k for k, d in declared_config().items() if not d.get("secret")}
    assert set(S.TABLE) == declared
    assert S.attribute_of("uploadLimitMiB") == "upload_limit_mib" and S.attribute_of("hostVcpus") == "host_vcpus"
    extra = {**declared_config(), "newKey": {"type": "string", "default": ""}}
    original = S.declared_config
    try:
        S.declared_config = lambda: extra
        with pytest.raises(RuntimeError, match=r"without a Settings attribute: \['new_key'\]"):
            S._table()
        S.declared_config = lambda: {**original(), "port": {**original()["port"], "type": "string"}}
        with pytest.raises(RuntimeError, match=r"another type than Pulumi.yaml declares: port \(string\) is int"):
            S._table()
    finally:
        S.declared_config = original


def test_sizing_defaults_are_pulumi_yaml_defaults():
    """The sizing's defaults are read from Pulumi.yaml, not restated (6, 600, 1200)."""
    d = declared_config()
    assert sizing_mod.USERS_PER_WORKER == d["usersPerWorker"]["default"]
    assert (sizing_mod.LIMIT_TIME_CPU, sizing_mod.LIMIT_TIME_REAL) == (d["limitTimeCpu"]["default"],
                                                                       d["limitTimeReal"]["default"])
    z = sizing_mod.size(15)
    assert (z.users_per_worker, z.limit_time_cpu, z.limit_time_real) == (6, 600, 1200)
