"""The project tags reach every taggable AWS resource through one transformation
(components/tagging.py), and only those: what `tags=` on each resource used to do."""

import pulumi
import pulumi_aws as aws
import pytest

from components.tagging import _with_tags, tags_transformation

PROJECT_TAGS = {"Project": "odoo-pulumi", "Stack": "t", "ManagedBy": "pulumi"}


def transform(type_, props):
    args = pulumi.ResourceTransformationArgs(resource=None, type_=type_, name="n", props=props,
                                             opts=pulumi.ResourceOptions())
    return tags_transformation(PROJECT_TAGS)(args)


def test_own_tags_win_over_the_projects():
    """A resource's Name/Role stay; the project's tags are added under them."""
    out = transform("aws:ebs/volume:Volume", {"size": 30, "tags": {"Name": "data", "Stack": "mine"}})
    assert out.props == {"size": 30, "tags": {**PROJECT_TAGS, "Name": "data", "Stack": "mine"}}


def test_an_untagged_taggable_resource_gets_the_project_tags():
    out = transform("aws:ec2/eip:Eip", {"domain": "vpc", "tags": None})
    assert out.props["tags"] == PROJECT_TAGS


def test_resources_without_tags_and_other_providers_are_left_alone():
    """An attachment has no tags input; a command is no AWS resource."""
    assert transform("aws:ec2/volumeAttachment:VolumeAttachment", {"device_name": "/dev/sdf"}) is None
    assert transform("command:remote:Command", {"tags": {}}) is None


def test_the_generated_args_objects_are_copied_not_changed():
    """pulumi_aws passes an args object whose attributes are the inputs."""
    props = aws.ec2.InstanceArgs.__new__(aws.ec2.InstanceArgs)
    vars(props).update(instance_type="t4g.small", tags={"Name": "odoo"})
    out = _with_tags(props, PROJECT_TAGS)
    assert vars(out)["tags"] == {**PROJECT_TAGS, "Name": "odoo"} and vars(out)["instance_type"] == "t4g.small"
    assert vars(props)["tags"] == {"Name": "odoo"}


def test_tags_that_cannot_be_merged_are_refused():
    with pytest.raises(TypeError, match="plain mapping"):
        transform("aws:ec2/eip:Eip", {"tags": ["Project"]})
