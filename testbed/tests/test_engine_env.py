"""testbed/scripts/engine-env: which Pulumi engine and command provider odoo-pulumi runs with.

The Pulumi CLI here is a FAKE (a shell script that records its calls and answers `version`
and `plugin install` the way the real CLI lays plugins out), and so is `go` (it records its
calls and fails): the point is what engine-env asks of them. The scripts run from a copy of
the repository's testbed/scripts, testbed/engine and requirements.txt, so a test may swap
testhost-up or build-command-provider for a stub without touching the checkout.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import assert_shell_clean

ROOT = Path(__file__).resolve().parents[2]

FAKE_PULUMI = r"""#!/bin/bash
# FAKE pulumi CLI (testbed/tests/test_engine_env.py): records its calls in $FAKE_LOG.
echo "pulumi $*" >> "$FAKE_LOG"
case "$1" in
version) echo "${FAKE_PULUMI_VERSION:-v3.260.0}" ;;
plugin)
  [ "$2" = install ] || exit 2
  kind=$3 name=$4 ver=$5; shift 5
  file="" reinstall=false
  while [ $# -gt 0 ]; do
    case "$1" in --file) file=$2; shift ;; --reinstall) reinstall=true ;; esac; shift
  done
  dir="$PULUMI_HOME/plugins/$kind-$name-v$ver"
  if [ -z "$file" ] && [ "${FAKE_DOWNLOAD:-fail}" != ok ]; then
    echo "error: could not download plugin: no network (FAKE)" >&2; exit 1
  fi
  [ "$reinstall" = true ] && rm -rf "$dir"
  mkdir -p "$dir"
  if [ -n "$file" ]; then cp "$file" "$dir/pulumi-resource-$name"; else echo "REAL, DOWNLOADED (FAKE)" > "$dir/pulumi-resource-$name"; fi
  chmod 755 "$dir/pulumi-resource-$name" ;;
*) exit 0 ;;
esac
"""

FAKE_GO = """#!/bin/sh
# FAKE go (testbed/tests/test_engine_env.py): records the call and fails, so any build is seen.
echo "go $*" >> "$FAKE_LOG"
echo "go: FAKE, always fails" >&2
exit 1
"""

REAL_PROVIDER = b"#!/bin/sh\n# the user's own pulumi-resource-command 1.2.1\n"


def write_exe(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    path.chmod(0o755)
    return path


class Box:
    """A copy of the scripts, a fake pulumi and go, a PULUMI_HOME and a cache, all in tmp."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.repo = tmp / "repo"
        self.scripts = self.repo / "testbed" / "scripts"
        shutil.copytree(ROOT / "testbed" / "scripts", self.scripts)
        shutil.copy(ROOT / "requirements.txt", self.repo / "requirements.txt")
        shutil.copytree(ROOT / "testbed" / "engine", self.repo / "testbed" / "engine")
        self.bin = tmp / "bin"
        self.log = tmp / "calls.log"
        self.home = tmp / "pulumi-home"
        self.cache = tmp / "cache"
        write_exe(self.bin / "pulumi", FAKE_PULUMI)
        write_exe(self.bin / "go", FAKE_GO)
        self.env = {
            "PATH": f"{self.bin}:/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin",
            "HOME": str(tmp / "home"),
            "PULUMI_HOME": str(self.home),
            "ODOO_PULUMI_CACHE": str(self.cache),
            "FAKE_LOG": str(self.log),
            "LANG": "C.UTF-8",
        }

    @property
    def provider(self) -> Path:
        return self.home / "plugins" / "resource-command-v1.2.1" / "pulumi-resource-command"

    @property
    def marker(self) -> Path:
        return self.provider.parent / ".odoo-pulumi-stand-in"

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def engine_env(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.scripts / "engine-env"), *args], env={**self.env, **env},
                              capture_output=True, text=True, timeout=120)

    def stub_stand_in_build(self, content: bytes) -> Path:
        """testbed/scripts/build-command-provider replaced by a stub printing a prebuilt binary."""
        binary = write_exe(self.tmp / "built" / "pulumi-resource-command", content)
        write_exe(self.scripts / "build-command-provider",
                  f'#!/bin/sh\necho "build-command-provider" >> "$FAKE_LOG"\necho {binary}\n')
        return binary


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return Box(tmp_path)


def exports(stdout: str) -> dict[str, str]:
    out = {}
    for line in stdout.splitlines():
        assert line.startswith("export "), line
        k, v = line.removeprefix("export ").split("=", 1)
        out[k] = v
    return out


@pytest.mark.skipif(os.geteuid() != 0, reason="testbed/scripts/demo refuses to run without root")
def test_demo_engine_step_builds_and_installs_nothing_with_an_installed_cli(box: Box):
    """`make demo` with a pulumi on PATH and the real provider installed: its engine step
    asks the CLI its version and nothing else, never runs go, leaves the provider as it was."""
    box.provider.parent.mkdir(parents=True)
    write_exe(box.provider, REAL_PROVIDER)
    before = box.provider.stat()
    write_exe(box.scripts / "testhost-up", "#!/bin/sh\necho STUB-TESTHOST-UP >&2\nexit 7\n")
    r = subprocess.run([str(box.scripts / "demo")], env={**box.env, "DEMO_DIR": str(box.tmp / "demo")},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 7 and "STUB-TESTHOST-UP" in r.stderr, r.stderr  # the engine step passed
    assert box.calls() == ["pulumi version"], box.calls()
    assert box.provider.read_bytes() == REAL_PROVIDER
    after = box.provider.stat()
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)
    assert not box.marker.exists()
    assert not box.cache.exists(), list(box.cache.rglob("*"))
    assert "installed, on PATH" in r.stderr and "used as it is" in r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="testbed/scripts/demo refuses to run without root")
def test_demo_stops_at_an_unusable_engine(box: Box):
    """An unsupported CLI stops `make demo` at its engine step, before any test host boots."""
    write_exe(box.scripts / "testhost-up", "#!/bin/sh\necho STUB-TESTHOST-UP >&2\nexit 7\n")
    r = subprocess.run([str(box.scripts / "demo")],
                       env={**box.env, "DEMO_DIR": str(box.tmp / "demo"), "FAKE_PULUMI_VERSION": "v3.100.0"},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "STUB-TESTHOST-UP" not in r.stderr, r.stderr
    assert "v3.100.0" in r.stderr and "no usable Pulumi engine" in r.stderr


def test_installed_cli_keeps_plugin_downloads_on(box: Box):
    """With an installed CLI nothing is added to PATH and plugin downloads stay on."""
    write_exe(box.provider, REAL_PROVIDER)
    r = box.engine_env()
    assert r.returncode == 0, r.stderr
    assert exports(r.stdout) == {"PULUMI_SKIP_UPDATE_CHECK": "true"}


def test_cli_in_pulumi_home_bin_is_found(box: Box):
    """Pulumi's installer puts the CLI in ~/.pulumi/bin, which may not be on PATH yet."""
    (box.bin / "pulumi").rename(write_exe(box.home / "bin" / "x", "").parent / "pulumi")
    write_exe(box.provider, REAL_PROVIDER)
    r = box.engine_env()
    assert r.returncode == 0, r.stderr
    assert exports(r.stdout)["PATH"].startswith(str(box.home / "bin"))
    assert box.calls() == ["pulumi version"]


@pytest.mark.parametrize("version", ["v3.259.0", "v3.9.0", "v4.0.0", "v2.999.0"])
def test_unsupported_version_stops_with_the_range(box: Box, version: str):
    r = box.engine_env(FAKE_PULUMI_VERSION=version)
    assert r.returncode != 0
    assert f"is {version};" in r.stderr and "v3.260.0 or newer, below v4.0.0" in r.stderr, r.stderr
    assert "ODOO_PULUMI_ENGINE_DIR" in r.stderr
    assert box.calls() == ["pulumi version"], "nothing may be built or installed"


@pytest.mark.parametrize("version", ["v3.260.0", "v3.274.1", "v3.300.0-dev.0"])
def test_supported_versions(box: Box, version: str):
    write_exe(box.provider, REAL_PROVIDER)
    assert box.engine_env(FAKE_PULUMI_VERSION=version).returncode == 0


def test_engine_dir_setting_chooses_the_engine(box: Box):
    """ODOO_PULUMI_ENGINE_DIR wins over the pulumi on PATH and goes first on PATH."""
    other = box.tmp / "other-engine"
    write_exe(other / "pulumi", FAKE_PULUMI.replace('echo "pulumi $*"', 'echo "other $*"'))
    write_exe(box.provider, REAL_PROVIDER)
    r = box.engine_env(ODOO_PULUMI_ENGINE_DIR=str(other))
    assert r.returncode == 0, r.stderr
    assert box.calls() == ["other version"]
    assert exports(r.stdout)["PATH"] == f"{other}${{PATH:+:$PATH}}"


def test_engine_dir_setting_without_pulumi_is_an_error(box: Box):
    r = box.engine_env(ODOO_PULUMI_ENGINE_DIR=str(box.tmp / "nowhere"))
    assert r.returncode != 0
    assert f"ODOO_PULUMI_ENGINE_DIR={box.tmp / 'nowhere'} holds no executable 'pulumi'" in r.stderr
    assert box.calls() == []


def test_no_cli_builds_one(box: Box):
    """Only where no CLI is installed is one built (here the fake go fails: a clear error)."""
    (box.bin / "pulumi").unlink()
    r = box.engine_env()
    assert r.returncode != 0
    assert box.calls() and box.calls()[0].startswith("go "), box.calls()
    assert "testbed/scripts/build-engine failed" in r.stderr and "install the Pulumi CLI" in r.stderr


def test_provider_on_path_is_used_as_it_is(box: Box):
    write_exe(box.bin / "pulumi-resource-command", REAL_PROVIDER)
    r = box.engine_env(PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true")
    assert r.returncode == 0, r.stderr
    assert box.calls() == ["pulumi version"]
    assert not box.provider.exists()


def test_missing_provider_is_downloaded_where_there_is_a_network(box: Box):
    r = box.engine_env(FAKE_DOWNLOAD="ok")
    assert r.returncode == 0, r.stderr
    assert box.calls() == ["pulumi version", "pulumi plugin install resource command 1.2.1"]
    assert box.provider.read_text() == "REAL, DOWNLOADED (FAKE)\n"
    assert not box.marker.exists()
    assert "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION" not in exports(r.stdout)


def test_failed_download_falls_back_to_the_stand_in(box: Box):
    built = box.stub_stand_in_build(b"#!/bin/sh\n# stand-in v1\n")
    r = box.engine_env()
    assert r.returncode == 0, r.stderr
    assert box.calls() == ["pulumi version", "pulumi plugin install resource command 1.2.1",
                           "build-command-provider",
                           f"pulumi plugin install resource command 1.2.1 --file {built} --reinstall"]
    assert box.provider.read_bytes() == built.read_bytes()
    assert f"sha256={hashlib.sha256(built.read_bytes()).hexdigest()}" in box.marker.read_text()
    assert exports(r.stdout)["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] == "true"


def test_offline_installs_the_stand_in_without_trying_a_download(box: Box):
    built = box.stub_stand_in_build(b"#!/bin/sh\n# stand-in v1\n")
    r = box.engine_env(PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="1")
    assert r.returncode == 0, r.stderr
    assert not [c for c in box.calls() if c == "pulumi plugin install resource command 1.2.1"]
    assert box.provider.read_bytes() == built.read_bytes() and box.marker.exists()
    # A second run changes nothing.
    box.log.unlink()
    r = box.engine_env(PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="1")
    assert r.returncode == 0 and box.calls() == ["pulumi version", "build-command-provider"], box.calls()


def test_only_our_marked_stand_in_is_ever_updated(box: Box):
    """A newer stand-in replaces the one engine-env installed; a provider whose bytes are not
    the ones the marker records (someone replaced it) is left alone."""
    box.stub_stand_in_build(b"#!/bin/sh\n# stand-in v1\n")
    assert box.engine_env(PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true").returncode == 0
    v2 = box.stub_stand_in_build(b"#!/bin/sh\n# stand-in v2\n")
    assert box.engine_env(PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true").returncode == 0
    assert box.provider.read_bytes() == v2.read_bytes()

    box.provider.write_bytes(REAL_PROVIDER)  # replaced by hand, marker left behind
    box.stub_stand_in_build(b"#!/bin/sh\n# stand-in v3\n")
    box.log.unlink()
    r = box.engine_env(PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true")
    assert r.returncode == 0, r.stderr
    assert box.provider.read_bytes() == REAL_PROVIDER
    assert box.calls() == ["pulumi version"]


def test_stand_in_installed_before_markers_is_updated(box: Box):
    """An older engine-env installed the stand-in without a marker: it names itself in its
    schema, so it is recognised, updated and marked (the real provider never is)."""
    write_exe(box.provider, b"\x7fELF...Command (odoo-pulumi stand-in)...")
    built = box.stub_stand_in_build(b"#!/bin/sh\n# stand-in v2\n")
    r = box.engine_env(PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true")
    assert r.returncode == 0, r.stderr
    assert box.provider.read_bytes() == built.read_bytes() and box.marker.exists()


def test_unmarked_installed_provider_is_never_replaced(box: Box):
    write_exe(box.provider, REAL_PROVIDER)
    box.stub_stand_in_build(b"#!/bin/sh\n# stand-in\n")
    r = box.engine_env(PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true")
    assert r.returncode == 0, r.stderr
    assert box.provider.read_bytes() == REAL_PROVIDER and not box.marker.exists()
    assert box.calls() == ["pulumi version"]


def test_cli_mode_prints_only_the_directory(box: Box):
    r = box.engine_env("--cli")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{box.bin}\n"
    assert box.calls() == ["pulumi version"]


@pytest.mark.parametrize("script", ["testbed/scripts/engine-env", "testbed/scripts/build-engine",
                                    "testbed/scripts/build-command-provider", "testbed/scripts/demo",
                                    "testbed/scripts/local-stack", "scripts/run-tests"])
def test_engine_scripts_are_shell_clean(script: str):
    assert_shell_clean(ROOT / script)
