"""odoo-pulumi's policy pack: run with `pulumi preview --policy-pack policy`.

The engine starts this file with the pack directory as the working directory; the
checks import the sizing from the repository, so its root goes on sys.path first.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for path in (HERE, HERE.parent):  # the pack's modules, then the repository (components/)
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from odoo_policies import policies  # noqa: E402

PolicyPack(
    name="odoo-pulumi",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=policies(),
)
