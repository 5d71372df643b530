"""The sizing gives the same report as the recorded one for every user count.

`tests/fixtures/sizing/reports.json` holds a short digest of `size(...).to_json()` (or of
the error message) for every user count 0..max+1 on every arch and both worker shares (every 4th
at usersPerWorker 3 and 10), every catalogued type forced, a few existing hosts and time limits.
It was recorded from the 162-line `size()` before it was split into named steps, so a
refactoring that changes any number, reason or message fails here, naming the case.
A deliberate sizing change re-records it: `python -m tests.test_sizing_golden --write`.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Iterator

import pytest

from odoo_pulumi import sizing
from odoo_pulumi.instance_types import CATALOGUE

FIXTURE = Path(__file__).parent / "fixtures" / "sizing" / "reports.json"


def _digest(kwargs: dict) -> str:
    try:
        out = json.dumps(sizing.size(**kwargs).to_json(), sort_keys=True)
    except sizing.SizingError as e:
        out = f"error: {e}"
    return hashlib.sha256(out.encode()).hexdigest()[:8]


def groups() -> Iterator[tuple[str, list[dict]]]:
    """The recorded cases, in groups of calls to size() (one fixture line each)."""
    for arch in ("any", "x86_64", "arm64"):
        for full in (False, True):
            for upw in (6, 3, 10):
                top = sizing.max_users(upw, full)
                step = 1 if upw == sizing.USERS_PER_WORKER else 4  # every count at the default
                users = sorted({*range(0, top + 2, step), top, top + 1})
                yield (f"arch={arch} full={full} upw={upw} users=0..{top + 1} step {step}",
                       [dict(users=u, users_per_worker=upw, arch=arch, full_worker_count=full) for u in users])
    yield ("instance types x users 1,15,60,150,400,720",
           [dict(users=u, instance_type=t.name) for t in CATALOGUE for u in (1, 15, 60, 150, 400, 720)])
    yield ("existing hosts x users 5,30,60,150",
           [dict(users=u, host_vcpus=c, host_memory_mib=m, host_threads_per_core=t)
            for c, m, t in ((2, 4096, 1), (4, 8192, 2), (16, 32768, 2), (2, 2048, 1), (6, 16384, 3))
            for u in (5, 30, 60, 150)])
    yield ("time limits at 60 users",
           [dict(users=60, limit_time_real=r, limit_time_cpu=c) for r, c in ((60, 30), (5000, 4000), (14400, 7200))])


def record() -> dict[str, str]:
    return {name: " ".join(_digest(kw) for kw in calls) for name, calls in groups()}


@pytest.fixture(scope="module")
def recorded() -> dict[str, str]:
    return json.loads(FIXTURE.read_text())


@pytest.mark.parametrize("name, calls", list(groups()), ids=[n for n, _ in groups()])
def test_size_gives_the_recorded_report(recorded, name, calls):
    """Every case of the group gives the report recorded before the split."""
    want = recorded[name].split()
    assert len(want) == len(calls)
    wrong = [(kw, w) for kw, w in zip(calls, want) if _digest(kw) != w]
    assert not wrong, f"{len(wrong)} case(s) differ from the recording, first: size(**{wrong[0][0]})"


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        FIXTURE.write_text(json.dumps(record(), indent=1, sort_keys=True) + "\n")
        print(f"wrote {FIXTURE}")
