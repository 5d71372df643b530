"""The project's tags on every taggable AWS resource, set in one place.

A component passes `tagged(settings, opts)` to its own constructor: the transformation
runs for each of its children (Pulumi applies a parent's transformations to every
resource below it) and merges the project tags into the `tags` input of each resource
that has one. A resource's own tags (Name, Role, Users...) win over the project's.

Why a transformation and not `aws:defaultTags`: the provider's default tags are not
resource inputs (they land in `tagsAll`), so the policy pack and the tests, which read a
resource's `tags`, would no longer see them, and moving them would show as a diff on
every resource; a transformation gives the very inputs a hand-written `tags=` gave.
Why a component-level transformation rather than a stack one: each component keeps
its tags when built alone (the mocks tests do), and the stack registers nothing global.
Nested tags (an instance's root volume) are not resource tags: their owner sets them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Optional

import pulumi

from odoo_pulumi.aws import project_tags
from odoo_pulumi.settings import Settings


def _with_tags(props: Any, tags: dict[str, str]) -> Optional[Any]:
    """`props` with `tags` merged under its own tags; None when it has no `tags` input.

    Props are a mapping or, for the generated AWS classes, an args object whose
    attributes are its inputs (`tags` is one of them exactly when the type is taggable).
    """
    own = props if isinstance(props, Mapping) else vars(props)
    if "tags" not in own:
        return None
    if not isinstance(own["tags"] or {}, Mapping):
        raise TypeError(f"tags must be a plain mapping to merge the project's into, not {own['tags']!r}")
    merged = {**tags, **(own["tags"] or {})}
    if isinstance(props, Mapping):
        return {**props, "tags": merged}
    out = copy.copy(props)
    vars(out)["tags"] = merged
    return out


def tags_transformation(tags: dict[str, str]) -> pulumi.ResourceTransformation:
    """A transformation adding `tags` to every taggable AWS resource it sees."""

    def add(args: pulumi.ResourceTransformationArgs) -> Optional[pulumi.ResourceTransformationResult]:
        if not args.type_.startswith("aws:"):
            return None
        props = _with_tags(args.props, tags)
        return None if props is None else pulumi.ResourceTransformationResult(props, args.opts)

    return add


def tagged(s: Settings, opts: Optional[pulumi.ResourceOptions]) -> pulumi.ResourceOptions:
    """`opts` plus the transformation that tags every AWS resource below the component."""
    return pulumi.ResourceOptions.merge(
        opts, pulumi.ResourceOptions(transformations=[tags_transformation(project_tags(s))]))
