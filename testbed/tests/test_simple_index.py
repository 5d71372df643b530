"""testbed/scripts/lib/simple_index.py: the PEP 503 index that pip on the offline test host reads."""

from __future__ import annotations

import hashlib
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("simple_index", ROOT / "testbed" / "scripts" / "lib" / "simple_index.py")
simple_index = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(simple_index)


def test_project_names_are_normalised_as_pip_asks_for_them():
    """pip requests /simple/<normalised name>/: `python-ldap`, not `python_ldap`."""
    assert simple_index.project_of("python_ldap-3.4.4-cp313-cp313-linux_x86_64.whl") == "python-ldap"
    assert simple_index.project_of("zope.interface-8.0-cp313-cp313-manylinux_2_17_x86_64.whl") == "zope-interface"
    assert simple_index.project_of("Babel-2.17.0-py3-none-any.whl") == "babel"
    with pytest.raises(ValueError, match="not a wheel"):
        simple_index.project_of("lxml-5.2.1.tar.gz")


def test_index_links_every_wheel_with_its_hash(tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    wheels = ["Babel-2.17.0-py3-none-any.whl", "python_ldap-3.4.4-cp313-cp313-linux_x86_64.whl"]
    for w in wheels:
        (files / w).write_bytes(w.encode())
    assert simple_index.build(tmp_path) == {"babel": [wheels[0]], "python-ldap": [wheels[1]]}
    root = (tmp_path / "simple" / "index.html").read_text()
    assert re.findall(r'href="([^"]+)"', root) == ["babel/", "python-ldap/"]
    page = (tmp_path / "simple" / "python-ldap" / "index.html").read_text()
    digest = hashlib.sha256(wheels[1].encode()).hexdigest()
    assert re.findall(r'href="([^"]+)"', page) == [f"../../files/{wheels[1]}#sha256={digest}"]


def test_an_empty_directory_is_an_error(tmp_path):
    (tmp_path / "files").mkdir()
    with pytest.raises(ValueError, match="no wheel"):
        simple_index.build(tmp_path)
