"""The operator's questions before deploying, as commands (no Pulumi, no server):

  python -m odoo_pulumi.cli sizing --users 60          the sizing for N users, explained
  python -m odoo_pulumi.cli render --stack small --out DIR
                                                       every server file of a stack under
                                                       DIR, secrets as placeholders

(`make sizing USERS=60`, `make render STACK=small`). Kept apart from the library so that
the library's modules import nothing but each other downward.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from odoo_pulumi import backup, render
from odoo_pulumi.server_files import write_tree
from odoo_pulumi.settings import SECRET_KEYS, SettingsError, load_settings, read_stack_file, sizing_for
from odoo_pulumi.sizing import ARCH, ARCHES, USERS_PER_WORKER, SizingError, format_table, size

# The aws target's backup bucket is named when the stack is deployed: the dry run shows this.
DRY_RUN_BUCKET = "bucket-created-by-pulumi"
DRY_RUN_REGION = "eu-west-1"


def sizing_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m odoo_pulumi.cli sizing", description="Explain the server sizing for N users."
    )
    parser.add_argument("--users", type=int, required=True, help="concurrent users")
    parser.add_argument("--users-per-worker", type=int, default=USERS_PER_WORKER)
    parser.add_argument("--instance-type", default=None, help="check a given type instead of choosing")
    parser.add_argument("--arch", default=ARCH, choices=ARCHES)
    parser.add_argument("--full-worker-count", action="store_true",
                        help="size for every worker the users need, not the guide's 80 %% share")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        s = size(
            args.users,
            users_per_worker=args.users_per_worker,
            instance_type=args.instance_type,
            arch=args.arch,
            full_worker_count=args.full_worker_count,
        )
    except SizingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(s.to_json(), indent=2) if args.json else format_table(s))
    return 0


def render_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m odoo_pulumi.cli render",
        description="Write every server file of a stack under DIR, secrets as placeholders.",
    )
    parser.add_argument("--stack", required=True, help="stack name: stacks/Pulumi.<stack>.yaml")
    parser.add_argument("--out", required=True, type=Path, help="directory to write the tree into")
    args = parser.parse_args(argv)
    try:
        raw = read_stack_file(args.stack)
        s = load_settings(raw, args.stack, secrets_present=set(SECRET_KEYS))
    except SettingsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    z = sizing_for(s)
    bucket = {"bucket": DRY_RUN_BUCKET, "region": DRY_RUN_REGION} if s.target == "aws" else {}
    files = {**render.server_files(s, z), **backup.server_files(s, **bucket)}
    for path in write_tree(files.values(), args.out):
        print(path)
    print(f"# {z.summary}", file=sys.stderr)
    return 0


COMMANDS = {"sizing": sizing_main, "render": render_main}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
