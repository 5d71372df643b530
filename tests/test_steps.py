"""The provisioning plan without Pulumi: graph, embedded files, secrets, change scoping.

The scripts are checked as text here (what each embeds and nothing else) and by bash
and shellcheck (syntax); tests/remote/ runs them on a real server.
"""

from __future__ import annotations

import base64
import re

import pytest

from odoo_pulumi import steps
from odoo_pulumi import backup
from odoo_pulumi import render as render_module
from odoo_pulumi.render import server_files as render_server_files
from odoo_pulumi.settings import sizing_for
from tests.conftest import assert_shell_clean, host_settings, stack_settings


def server_files(s, z):
    """Every file the server gets: render's and the backup's (the stack bucket on aws)."""
    aws = s.target == "aws"
    return {**render_server_files(s, z),
            **backup.server_files(s, bucket="odoo-backups-test-0a1b2c3" if aws else None,
                                  region="eu-west-1" if aws else None)}


def backup_destination(s):
    """Where those backup files send the backups (what the program passes on aws)."""
    return backup.destination(s, "odoo-backups-test-0a1b2c3", "eu-west-1") if s.target == "aws" else None

ADMIN = "correct horse battery staple"
USER_PASSWORD = "administrator user password"
# What the server's odoo.conf holds once odoo-config filled the slot (a made-up hash: the
# program never computes one).
HASH = "$pbkdf2-sha512$600000$c2FsdHNhbHRzYWx0c2FsdA$" + "Q" * 86
SHA = "0123456789abcdef" * 4
VOLUME = "vol-0123456789abcdef0"


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    path = tmp_path_factory.mktemp("odoo") / "odoo-19.0.tar.gz"
    path.write_bytes(b"not really a tarball")
    return str(path)


def host(archive=None, **over):
    if archive:
        over = {"odooSource": "archive", "odooArchive": archive, **over}
    return host_settings(**over)


def aws(**over):
    return stack_settings("small", **over)


def render(s, admin=ADMIN, host_addr="203.0.113.10", user_password=USER_PASSWORD):
    files = server_files(s, sizing_for(s))
    return steps.render_scripts(
        s, files, host=host_addr, admin_password=admin, admin_user_password=user_password,
        archive_sha256=SHA if s.odoo_source == "archive" else None,
        data_volume_id=VOLUME if s.target == "aws" else None, backup_destination=backup_destination(s),
    )


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --- the graph -------------------------------------------------------------------------

def test_plan_order_respects_every_dependency():
    """Steps run in plan order in the e2e test: each must come after what it depends on."""
    for s in (host_settings(), aws()):
        seen: set[str] = set()
        for step in steps.plan(s):
            assert set(step.depends_on) <= seen, f"{step.name} comes before {set(step.depends_on) - seen}"
            seen.add(step.name)


def test_host_plan_has_no_data_volume_and_aws_mounts_it_before_data():
    """The EBS volume exists only on AWS, and PostgreSQL and Odoo's data must land on it."""
    host_names = [st.name for st in steps.plan(host_settings())]
    assert host_names == ["wait", "base", "postgresql", "odoo-install", "odoo-config", "nginx", "backup", "health"]
    by_name = {st.name: st for st in steps.plan(aws())}
    assert "data-volume" in by_name["postgresql"].depends_on
    assert "data-volume" in by_name["odoo-install"].depends_on
    assert by_name["data-volume"].depends_on == ("wait",)


def test_independent_steps_can_run_in_parallel():
    """Nginx waits only for the base packages, not for PostgreSQL or Odoo."""
    by_name = {st.name: st for st in steps.plan(host_settings())}
    assert by_name["nginx"].depends_on == ("base",)
    assert set(by_name["health"].depends_on) == {"odoo-config", "nginx"}
    assert set(by_name["odoo-config"].depends_on) == {"postgresql", "odoo-install"}


def test_each_step_embeds_its_own_files():
    """Which server file lands in which step's script (and in no other)."""
    s = host_settings(domain="erp.example.com", letsencryptEmail="it@example.com")
    files = server_files(s, sizing_for(s))
    scripts = render(s)
    owners = {st.name: st.embeds for st in steps.plan(s)}
    assert owners["postgresql"] == ("postgresql-tuning",)
    assert owners["odoo-config"] == ("odoo.conf", "odoo.service", "odoo.socket")
    assert owners["nginx"] == ("nginx-site", "nginx-site-acme")
    for key, f in files.items():
        # A shipped program (an upload) is named by its SHA-256, any other file embedded.
        mark = f.sha256 if f.source else b64(f.content)
        holders = [name for name, script in scripts.items() if mark in script]
        owner = [name for name, embeds in owners.items() if key in embeds]
        assert holders == owner, f"{key} is embedded in {holders}, expected {owner}"


# --- secrets ---------------------------------------------------------------------------

def test_no_command_string_holds_anything_secret():
    """Commands appear in Pulumi's errors and state in clear: only fixed text there."""
    for s in (host_settings(), aws(), host_settings(keepDataOnDestroy=False), host_settings(sshUser="root")):
        for step in steps.plan(s):
            for cmd in (steps.create_command(s), steps.delete_command(step, s)):
                if cmd is None:
                    continue
                assert ADMIN not in cmd and USER_PASSWORD not in cmd and b64(ADMIN) not in cmd
                assert "pbkdf2" not in cmd
                assert len(cmd) < 400
        assert steps.create_command(s) in ("sudo -n bash -s", "bash -s")


def test_secret_file_only_in_secret_steps():
    """odoo.conf and the passwords ride only in steps whose stdin is secret."""
    s = host_settings()
    scripts = render(s)
    conf = server_files(s, sizing_for(s))["odoo.conf"]
    assert conf.secret
    for step in steps.plan(s):
        if b64(conf.content) in scripts[step.name]:
            assert steps.step_is_secret(step) and steps.step_embeds_secret(step)
    for step in steps.plan(s):
        if any(t in scripts[step.name] for t in (ADMIN, b64(ADMIN), USER_PASSWORD, b64(USER_PASSWORD))):
            assert steps.step_is_secret(step) and steps.step_embeds_secret(step), step.name
    assert b64(ADMIN) in scripts["odoo-config"] and b64(USER_PASSWORD) in scripts["odoo-config"]
    assert not any(pw in script for script in scripts.values() for pw in (ADMIN, USER_PASSWORD)), \
        "the passwords travel base64-encoded only"


def test_a_secret_file_in_a_public_step_is_refused():
    """If render marked another file secret, the plan must not ship it in a logged step."""
    s = host_settings()
    files = dict(server_files(s, sizing_for(s)))
    f = files["nginx-site"]
    files["nginx-site"] = type(f)(f.path, f.content, f.owner, f.group, f.mode, True)
    with pytest.raises(ValueError, match="secret"):
        steps.render_scripts(s, files, host="x", admin_password=ADMIN, admin_user_password=USER_PASSWORD)


def test_scripts_never_print_file_contents():
    """put_file takes contents from variables; no script echoes or cats a decoded file:
    decoded text goes to a file or into a variable (`name=$(...)`), never to the output."""
    for name, script in render(host_settings()).items():
        assert "set -x" not in script
        for line in script.splitlines():
            if "base64 -d" in line and not line.startswith("mapfile -t SECRET_TEXTS < <("):
                assert ">" in line or re.match(r"\s*\w+=\$\(", line), line
                assert "echo" not in line, line


# --- change scoping ----------------------------------------------------------------------

def test_a_change_of_odoo_conf_alone_touches_only_odoo_config_and_health():
    """A setting that only rewrites odoo.conf (a time limit) re-runs odoo-config and the
    health check, nothing else; a users change within the host's capacity re-runs nothing."""
    a, b = render(host_settings(users=15)), render(host_settings(users=15, limitTimeCpu=900))
    assert {k for k in a if a[k] != b[k]} == {"odoo-config", "health"}
    assert render(host_settings(users=19)) == a


@pytest.mark.parametrize("users", [(10, 20), (30, 60), (5, 6)])
def test_script_changes_follow_file_changes(users):
    """Steps re-run only when a file they embed changed: scripts without files never move with users."""
    s0, s1 = host_settings(users=users[0]), host_settings(users=users[1])
    f0, f1 = server_files(s0, sizing_for(s0)), server_files(s1, sizing_for(s1))
    a, b = render(s0), render(s1)
    changed_files = {k for k in f0 if f0[k].content != f1[k].content}
    for step in steps.plan(s0):
        if step.name == "health":
            continue
        expect = bool(set(step.embeds) & changed_files)
        assert (a[step.name] != b[step.name]) == expect, step.name


def test_scripts_are_deterministic():
    """Same settings, same bytes: Pulumi must see no diff on a second `pulumi up`."""
    assert render(host_settings()) == render(host_settings())


RENDER_DIGEST = """
import hashlib
from tests.test_steps import host_settings, render
print(hashlib.sha256(repr(sorted(render(host_settings()).items())).encode()).hexdigest())
"""


def test_scripts_do_not_depend_on_the_hash_seed():
    """Each `pulumi preview` is a new Python process with its own string hash seed: a set's
    order leaking into a script would make every preview show a change."""
    import os
    import subprocess
    import sys
    digests = {
        subprocess.run([sys.executable, "-c", RENDER_DIGEST], capture_output=True, text=True, check=True,
                       cwd=steps.ROOT, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2", "3")
    }
    assert len(digests) == 1, digests


def test_new_archive_reruns_install_and_config_only(archive):
    """New Odoo code re-runs the install, and odoo-config (which restarts Odoo if the code moved)."""
    s = host(archive)
    files = server_files(s, sizing_for(s))
    a = steps.render_scripts(s, files, host="h", admin_password=ADMIN, admin_user_password=USER_PASSWORD, archive_sha256="a" * 64)
    b = steps.render_scripts(s, files, host="h", admin_password=ADMIN, admin_user_password=USER_PASSWORD, archive_sha256="b" * 64)
    assert {k for k in a if a[k] != b[k]} == {"odoo-install", "odoo-config", "health"}


def test_admin_password_change_reruns_only_odoo_config():
    """A new master password (or administrator password) re-runs odoo-config only (and
    health, which re-checks whatever changed): the server hashes it there."""
    a = render(host_settings())
    b = render(host_settings(), admin="another master password")
    c = render(host_settings(), user_password="another user password")
    assert {k for k in a if a[k] != b[k]} == {"odoo-config", "health"}
    assert {k for k in a if a[k] != c[k]} == {"odoo-config", "health"}


# --- what the scripts do -----------------------------------------------------------------

def test_every_script_ends_with_its_changed_line_and_reads_no_stdin():
    """The result line is the contract with the tests; stdin is the script itself."""
    for name, script in render(aws()).items():
        assert script.rstrip().endswith("step_main </dev/null\nfinish") or (
            "    step_main </dev/null\n    finish\n) 2>&1 | guard_output" in script), name
        assert f'STEP="{name}"' in script
        assert "set -Eeuo pipefail" in script
        # the framework (its ERR trap included) is the step library, loaded first
        assert script.index("\nload_step_lib </dev/null\n") < script.index("step_main </dev/null")
    assert "trap 'on_error" in steps.STEP_LIB_SOURCE.read_text()


def test_wkhtmltopdf_skip_is_explicit():
    """installWkhtmltopdf false: no download at all, and the step says it skipped."""
    off = render(host_settings(installWkhtmltopdf=False))["odoo-install"]
    on = render(host_settings(installWkhtmltopdf=True))["odoo-install"]
    assert "wkhtmltopdf skipped" in off and "github.com/wkhtmltopdf" not in off
    assert "github.com/wkhtmltopdf" in on and "wkhtmltox_0.12.6.1-3" in on
    assert "967390a759707337b46d1c02452e2bb6b2dc6d59" in on  # jammy amd64 checksum


def test_sources_each_install_their_own_way(archive):
    """deb uses Odoo's nightly repository; git clones the ref; archive checks its hash."""
    deb = render(host_settings(odooSource="deb", odooVersion="18.0"))["odoo-install"]
    assert "https://nightly.odoo.com/18.0/nightly/deb/" in deb and "signed-by=/usr/share/keyrings/odoo-archive-keyring.gpg" in deb
    assert "apt_install odoo" in deb and "python3 -m venv" not in deb
    git = render(host_settings(odooSource="git", odooGitRef="saas-17.4"))["odoo-install"]
    assert "ref=saas-17.4" in git and "git -C" in git and "apt_install python3-venv python3-dev build-essential git" in git
    arc = render(host(archive))["odoo-install"]
    assert f"sha={SHA}" in arc and "sha256sum --check" in arc
    assert f"{steps.STAGING_DIR}/odoo-src-{SHA[:16]}.tar.gz" in arc


def test_pip_options(archive):
    """A mirror index and a wheel directory reach pip; a wheel directory alone means offline."""
    only_links = render(host(archive, pipFindLinks="/srv/wheels"))["odoo-install"]
    assert "--find-links /srv/wheels --no-index" in only_links
    both = render(host(archive, pipFindLinks="/srv/wheels", pipIndexUrl="https://pypi.example.com/simple"))["odoo-install"]
    assert "--index-url https://pypi.example.com/simple --find-links /srv/wheels" in both and "--no-index" not in both
    assert "--trusted-host" not in both


def test_an_http_index_is_trusted(archive):
    """pip ignores an http:// index whose host is not trusted: the whole install then fails."""
    script = render(host(archive, pipIndexUrl="http://10.213.0.1:8214/abc/simple/"))["odoo-install"]
    assert "--index-url http://10.213.0.1:8214/abc/simple/ --trusted-host 10.213.0.1:8214" in script


def test_firewall_ports_follow_the_ssh_port():
    """80/443 from anywhere; the SSH port in use only from the admin ranges (issue 11.2),
    after checking that this deployment's own address is in them."""
    script = render(host_settings(port=2222, adminCidrs=["198.51.100.7/24", "2001:db8::1/64", "198.51.100.0/24"]))["base"]
    assert re.search(r"for port in 80 443; do", script)
    assert "local ssh_port=2222 " in script
    assert "want=(198.51.100.0/24 2001:db8::/64 )" in script  # network addresses, each once
    body = script.split("step_main() {")[1]
    assert body.index('address_in_ranges "$client"') < body.index("ufw allow proto tcp from")
    assert body.index("ufw allow proto tcp from") < body.index("ufw delete $rule")  # add first, then remove
    anywhere = render(host_settings(adminCidrs=[], allowSshFromAnywhere=True))["base"]
    assert 'want=("anywhere")' in anywhere and "address_in_ranges \"$client\"" not in anywhere.split(
        "step_main() {")[1]
    assert "ufw" not in render(host_settings(firewall=False))["base"].split("step_main() {")[1].replace(
        "ufw left alone", "")


def test_sshd_hardening_never_locks_out_the_deployment():
    """Keys only and no root login, unless the deployment logs in as root (then root with
    keys only); said in one line for the preview."""
    s = host_settings()
    base = render(s)["base"]
    assert "harden_sshd ubuntu no 22" in base
    assert "PasswordAuthentication no" in base and "PermitRootLogin $permit_root" in base
    body = base.split("harden_sshd() {")[1]
    assert (body.index("^Accepted") < body.index("put_text") < body.index("check=$(sshd -t")
            < body.index("systemctl reload"))
    root = host_settings(sshUser="root")
    assert "harden_sshd root prohibit-password 22" in render(root)["base"]
    assert "only from 10.0.0.1/32" in steps.ssh_access_summary(s) and "no root login" in steps.ssh_access_summary(s)
    assert "root with keys only" in steps.ssh_access_summary(root)


def test_delete_keeps_data_unless_asked():
    """pulumi destroy on a host target leaves everything unless keepDataOnDestroy is false."""
    keep = host_settings()
    assert all(steps.delete_command(st, keep) is None for st in steps.plan(keep))
    drop = host_settings(keepDataOnDestroy=False)
    cmds = {st.name: steps.delete_command(st, drop) for st in steps.plan(drop)}
    assert "dropdb --if-exists odoo" in cmds["odoo-config"]
    assert "sites-enabled/odoo" in cmds["nginx"]
    assert cmds["postgresql"] is None and cmds["odoo-install"] is None


def test_data_volume_never_formats_a_used_device():
    """mkfs only after blkid found neither a file system nor a partition table."""
    script = render(aws())["data-volume"]
    body = script.split("step_main() {")[1]
    assert f"volume_id={VOLUME} mnt=/srv/odoo-data" in body
    mkfs = body.index("mkfs.ext4")
    assert body.index('if [ -z "$fstype" ]') < mkfs
    assert body.index("refusing to format") < mkfs
    assert 'ensure_fstab "$mnt" "UUID=$uuid $mnt $fstype defaults,noatime,nofail 0 2"' in body


def test_data_volume_holds_the_whole_cluster_and_the_filestore():
    """A new instance must find PostgreSQL's data AND its configuration, and Odoo's filestore."""
    body = render(aws())["data-volume"]
    for name, target in (("postgresql", "/var/lib/postgresql"), ("postgresql-etc", "/etc/postgresql"),
                         ("odoo", "/var/lib/odoo")):
        assert f"name={name} target={target}" in body
    pg = render(aws())["postgresql"]
    assert pg.index("adopt_owner postgres /var/lib/postgresql") < pg.index('apt_install "postgresql-$ver"')


def test_aws_needs_the_volume_and_archive_needs_its_hash(archive):
    """Missing inputs fail at render time, not halfway through a deployment."""
    s = aws()
    files = server_files(s, sizing_for(s))
    with pytest.raises(ValueError, match="volume"):
        steps.render_scripts(s, files, host="h", admin_password=ADMIN, admin_user_password=USER_PASSWORD)
    s = host(archive)
    with pytest.raises(ValueError, match="SHA-256"):
        steps.render_scripts(s, server_files(s, sizing_for(s)), host="h", admin_password=ADMIN, admin_user_password=USER_PASSWORD)


@pytest.mark.parametrize("variant", ["host", "aws", "deb-domain", "git-wk"])
def test_scripts_pass_bash_and_shellcheck(variant, tmp_path):
    """Every rendered script parses, and shellcheck finds no warning in it."""
    s = {
        "host": host_settings(addonsPaths=["/srv/a", "/srv/b"]),
        "aws": aws(),
        "deb-domain": host_settings(domain="erp.example.com", letsencryptEmail="it@example.com"),
        "git-wk": host_settings(odooSource="git", installWkhtmltopdf=True, pipIndexUrl="https://p.example.com/simple"),
    }[variant]
    for name, script in render(s).items():
        path = tmp_path / f"{name}.sh"
        path.write_text(script)
        assert_shell_clean(path)
    lib = tmp_path / "step-lib.sh"  # what every step sources, as the server gets it
    lib.write_text(steps.step_lib()["text"] + "\n")
    assert_shell_clean(lib)


def test_growing_the_data_volume_reruns_only_its_step():
    """dataVolumeGiB 30 -> 80: EBS grows the volume in place; only the data-volume step's
    script changes (and the health check after it), and it grows the file system (resize2fs)."""
    sa, sb = render(aws()), render(aws(dataVolumeGiB=80))
    assert [k for k in sa if sa[k] != sb[k]] == ["data-volume", "health"]  # health re-checks after any change
    assert "80 * 1024 * 1024 * 1024" in sb["data-volume"] and "resize2fs" in sb["data-volume"]


def test_archive_hash_is_cached_until_the_file_changes(tmp_path):
    """The archive's SHA-256 (every preview needs it) comes from a per-user cache keyed by
    path, inode, size and mtime; any change to the file hashes it again."""
    import hashlib
    import json
    import os
    archive = tmp_path / "odoo.tar.gz"
    archive.write_bytes(b"first")
    cache = tmp_path / "cache"
    first = steps.file_sha256(archive, cache_dir=cache)
    assert first == hashlib.sha256(b"first").hexdigest()
    assert (cache / "sha256.json").exists()
    # a forged cache entry for the same key is used (proves the cache is read) ...
    data = json.loads((cache / "sha256.json").read_text())
    (cache / "sha256.json").write_text(json.dumps({k: "0" * 64 for k in data}))
    assert steps.file_sha256(archive, cache_dir=cache) == "0" * 64
    # ... and any change of the file misses it
    archive.write_bytes(b"second!")
    os.utime(archive, ns=(1, 1))
    assert steps.file_sha256(archive, cache_dir=cache) == hashlib.sha256(b"second!").hexdigest()


# --- issue 11.6: a failed secret step never prints a secret --------------------------------------

LEAKY_BODY = r"""{% extends "_step.sh.j2" %}
{% block body %}
    # A step gone wrong in every way that could print what it carries.
    local content_1={{ f.b64 | q }} hash pw={{ pw | q }} pw_b64={{ pw | b64 | q }}
    changed "restarted odoo (changed: /etc/odoo/odoo.conf)"
    note "the password is $pw ($pw_b64)"
    echo "$pw" >&2
    echo "raw: $content_1"
    printf '%s' "$content_1" | base64 -d
    printf '%s' "$content_1" | base64 -d >&2
    hash=$(printf '%s' "$content_1" | base64 -d | sed -n 's/^admin_passwd = //p')
    note "the hash is $hash"
    note "a value: ${hash:20:45}"
    doing "writing $(printf '%s' "$content_1" | base64 -d | head -c 400)"
    false "$content_1"
{% endblock %}
"""


def _run_as_root_in_private_var_lib(script: str):
    """Run a step script as root with a private, empty /var/lib (a mount namespace):
    it writes only there, nothing of this machine is touched."""
    import os
    import shutil
    import subprocess
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare (a private mount namespace)")
    return subprocess.run(["unshare", "-m", "bash", "-c", "mount -t tmpfs tmpfs /var/lib && exec bash -s"],
                          input=script, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("guard", [True, False])
def test_failed_secret_step_prints_progress_but_no_secret(guard):
    """A step that writes odoo.conf and then fails, printing its content in every way:
    through the output guard the error shows the step's progress and failure lines
    (what the command provider repeats in its error) and none of the file. Without a
    guard (a step with no secret file) the same body prints the file: the test bites."""
    s = host_settings()
    files = server_files(s, sizing_for(s))
    # The file as the server holds it: the slot filled with a hash the guard never saw.
    conf = files["odoo.conf"]
    conf = type(conf)(conf.path, conf.content.replace(render_module.ADMIN_PASSWD_SLOT, HASH), conf.owner,
                      conf.group, conf.mode, conf.secret)
    texts = (steps._guarded_texts(steps.Step("odoo-config", (), ("odoo.conf",)), files, (ADMIN, USER_PASSWORD))
             if guard else [])
    script = steps._env.from_string(LEAKY_BODY).render(
        step="leaky", stack=s.stack, f=conf.template_data(), pw=ADMIN, secret_texts=texts,
        lib=steps.step_lib(), install_lib=True)  # the private /var/lib has no step library yet
    r = _run_as_root_in_private_var_lib(script)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "odoo-pulumi: leaky: restarted odoo (changed: /etc/odoo/odoo.conf)" in r.stdout
    assert "odoo-pulumi: leaky: FAILED" in r.stderr
    leaked = [t for t in (HASH, HASH[40:80], b64(conf.content)[:60], "admin_passwd", "limit_memory_hard = ",
                          ADMIN, b64(ADMIN)) if t in out]
    if guard:
        assert leaked == [], f"secret text in the output: {leaked}\n{out}"
        assert "sudo cat /var/lib/odoo-pulumi/log/leaky.log" in r.stderr
        # progress lines only (the first: the step library, installed in the private /var/lib)
        assert all(line.startswith("odoo-pulumi: leaky: ") for line in r.stdout.splitlines()), r.stdout
        assert r.stdout.count("\n") <= 5, r.stdout
    else:
        assert leaked, "the unguarded body must leak, or this test proves nothing"


def test_only_steps_with_a_secret_file_are_guarded():
    """The guard is rendered where a secret file rides, and nowhere else (other steps'
    scripts, and so their re-runs, are unchanged)."""
    scripts = render(host_settings())
    guarded = {name for name, script in scripts.items() if "| guard_output" in script}
    assert guarded == {"odoo-config"}


# --- issue 13: the shipped scripts carry no comment ------------------------------------------------

def test_shipped_scripts_hold_no_template_comment():
    """Comments are for readers of templates/: no rendered script holds a comment line
    (outside here-documents) but the #! line, shellcheck directives and the comments that
    carry template data (health's fingerprint, odoo-config's code reference, which re-run
    those steps when they change)."""
    data_comments = []
    for template in steps.TEMPLATES.glob("*.sh.j2"):
        for line in template.read_text().splitlines():
            if line.strip().startswith("#") and "{{" in line:
                parts = re.split(r"\{\{.*?\}\}", line.strip())
                data_comments.append(re.compile(".*".join(re.escape(p) for p in parts)))
    for s in (host_settings(), aws(), host_settings(domain="erp.example.com", letsencryptEmail="it@example.com")):
        scripts = render(s)
        for name, script in scripts.items():
            heredoc = None
            for line in script.splitlines():
                text = line.strip()
                if heredoc:
                    heredoc = None if text == heredoc else heredoc
                    continue
                m = steps._HEREDOC.search(line)
                if m:
                    heredoc = m.group(2)
                if text.startswith("#") and not text.startswith("#!") and not re.match(r"#\s*shellcheck\s", text):
                    assert any(c.fullmatch(text) for c in data_comments), f"{name}: comment shipped: {line}"
        assert "Re-runs whenever a step it checks changed: inputs " in scripts["health"]
        assert "Code of this deployment: odoo-install " in scripts["odoo-config"]


def test_stripping_comments_keeps_the_code_bash_runs(tmp_path):
    """Each template without its comments is the same program to bash: `declare -f` of
    the whole script wrapped in a function (bash prints code without comments) is the
    same with and without the stripping, so no here-document or quoted text lost a line."""
    import subprocess
    plain = steps.environment(steps.TEMPLATES, trim_blocks=True, lstrip_blocks=True,
                              comment_start_string="{##", comment_end_string="##}")
    plain.filters.update(steps._env.filters)
    s = host_settings(domain="erp.example.com", letsencryptEmail="it@example.com")
    stripped = render(s)
    original, steps._env = steps._env, plain
    try:
        full = render(s)
    finally:
        steps._env = original

    def code(script: str) -> str:
        r = subprocess.run(["bash", "-c", 'eval "f() {\n$(cat)\n}"; declare -f f'], input=script,
                           capture_output=True, text=True, check=True)
        return r.stdout

    for name in full:
        assert len(stripped[name]) < len(full[name]) and code(stripped[name]) == code(full[name]), name


# --- issue 13: the programs travel as uploads, their hash in the step that installs them ----------

@pytest.mark.parametrize("program", ["odoo-backup", "odoo-restore", "odoo-acceptance"])
def test_a_new_program_version_reruns_only_the_step_that_installs_it(program, tmp_path, monkeypatch):
    """A program shipped as an upload is named in its step's script by its SHA-256 and
    staging path (never its bytes): a new version changes that step's script (and
    health's, which re-checks after any change) and no other."""
    source = {"odoo-backup": (backup, "BACKUP_SOURCE"), "odoo-restore": (backup, "RESTORE_SOURCE"),
              "odoo-acceptance": (steps, "ACCEPTANCE_SOURCE")}[program]
    s = host_settings()
    before = render(s)
    changed = tmp_path / program
    changed.write_text(getattr(*source).read_text() + "\n# a new version\n")
    monkeypatch.setattr(*source, changed)
    after = render(s)
    user = steps.PROGRAM_STEPS[program]
    assert sorted(k for k in before if before[k] != after[k]) == sorted({user, "health"})
    new = steps.programs(s)[program][0]
    assert new.source == str(changed) and f"{new.staged} {new.sha256}" in after[user]
    for name, script in after.items():
        assert "# a new version" not in script and base64.b64encode(changed.read_bytes()).decode()[:80] not in script


# --- issue 13: the step framework is shipped once --------------------------------------------------

def test_the_step_framework_travels_once_in_wait():
    """The framework (templates/scripts/step-lib.sh) is in wait's script once, as the
    here-document that installs it, and in no other script: those carry its SHA-256 and
    source the installed copy after checking it."""
    lib = steps.step_lib()
    for s in (host_settings(), aws(), host_settings(domain="erp.example.com", letsencryptEmail="it@example.com")):
        scripts = render(s)
        for name, script in scripts.items():
            assert f"local want={lib['sha256']}\n" in script and f"STEP_LIB={lib['path']}\n" in script, name
            holds = script.count(lib["text"])
            assert holds == (1 if name == "wait" else 0), (name, holds)
            assert script.count("put_file() {") == holds and script.count("guard_output() {") == holds, name
        assert sum(map(len, scripts.values())) < 100_000  # was 149 kB with a domain before issue 13


def test_a_step_without_its_library_refuses_to_run():
    """A step other than wait on a server where wait has not installed this step library
    (or installed another version) stops at once, saying so, and changes nothing."""
    script = render(host_settings())["health"]
    r = _run_as_root_in_private_var_lib(script)
    assert r.returncode == 1 and r.stdout == ""
    assert "odoo-pulumi: health: FAILED: /var/lib/odoo-pulumi/step-lib.sh is missing or not this deployment's" in r.stderr


def test_the_stripping_environment_never_gets_a_template_compiled_without_it(tmp_path):
    """Compiled templates are cached per user, keyed by the template's file and source:
    the environment that strips comments salts that key, so it never loads what an
    environment without the stripping compiled from the same file (and the reverse)."""
    from odoo_pulumi import templating
    if templating._BYTECODE_CACHE is None:
        pytest.skip("no bytecode cache on this machine")
    (tmp_path / "t.sh.j2").write_text("# a comment\necho hi\n")
    assert templating.environment(tmp_path).get_template("t.sh.j2").render() == "# a comment\necho hi\n"
    stripping = templating.environment(tmp_path, extensions=[steps._ShellComments], cache_salt="test")
    assert stripping.get_template("t.sh.j2").render() == "echo hi\n"
    assert templating.environment(tmp_path).get_template("t.sh.j2").render() == "# a comment\necho hi\n"
