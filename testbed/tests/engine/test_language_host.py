"""odoo-pulumi's own Python language host (testbed/engine), in the engine built from Go modules.

`pulumi about` must read as with upstream's host: the resource plugins the program's packages
need (from their pulumi-plugin.json) and the Python toolchain. Upstream's host, built from
its public source, prints the same (docs/testbed.md). Needs Go (the engine is built once
into the cache) and the project's .venv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[3]
VENV = ROOT / ".venv"


def go_env() -> dict[str, str]:
    cache = Path(os.environ.get("ODOO_PULUMI_CACHE", "/var/cache/odoo-pulumi"))
    return dict(os.environ, GOTOOLCHAIN="local", GOSUMDB="off", GOFLAGS="-mod=readonly", CGO_ENABLED="0",
                GOMODCACHE=str(cache / "go" / "pkg" / "mod"), GOCACHE=str(cache / "go" / "build-cache"))


@pytest.fixture(scope="module")
def built_engine() -> Path:
    if shutil.which("go") is None:
        pytest.skip("needs the go command to build the engine")
    r = subprocess.run([str(ROOT / "testbed" / "scripts" / "build-engine")], capture_output=True, text=True, timeout=3000)
    assert r.returncode == 0, r.stderr
    return Path(r.stdout.strip().splitlines()[-1])


def test_go_unit_tests():
    """The language host's Go tests (options, exec arguments, plugins of the packages)."""
    if shutil.which("go") is None:
        pytest.skip("needs the go command")
    r = subprocess.run(["go", "test", "-count=1", "./..."], cwd=ROOT / "testbed" / "engine", env=go_env(),
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok  \todoo-pulumi/testbed/engine/cmd/pulumi-language-python" in r.stdout


def test_pulumi_about_lists_plugins_and_toolchain(built_engine: Path, tmp_path: Path):
    if not (VENV / "bin" / "python").exists():
        pytest.skip("needs the project's .venv (make venv)")
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "Pulumi.yaml").write_text("name: about-check\nruntime:\n  name: python\n  options:\n"
                                      f"    toolchain: pip\n    virtualenv: {VENV}\n")
    (proj / "__main__.py").write_text("import pulumi\n")
    (tmp_path / "state").mkdir()
    env = dict(os.environ, PATH=f"{built_engine}:{os.environ['PATH']}", PULUMI_HOME=str(tmp_path / "home"),
               PULUMI_BACKEND_URL=f"file://{tmp_path}/state", PULUMI_CONFIG_PASSPHRASE="x",
               PULUMI_SKIP_UPDATE_CHECK="true", PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true")
    subprocess.run(["pulumi", "stack", "init", "dev"], cwd=proj, env=env, check=True, capture_output=True,
                   timeout=120)
    r = subprocess.run(["pulumi", "about", "--json"], cwd=proj, env=env, capture_output=True, text=True,
                       timeout=300)
    about = json.loads(r.stdout)
    plugins = {(p["kind"], p["name"]): p["version"] for p in about["plugins"]}
    assert plugins[("resource", "command")] == "1.2.1", plugins
    assert ("resource", "aws") in plugins and ("language", "python") in plugins, plugins
    runtime = about["runtime"]
    assert runtime["executable"] == str(VENV / "bin" / "python")
    assert runtime["toolchain"] == "Pip" and runtime["toolchainVersion"], runtime
