"""User attribution chain and container classification from labels."""

from __future__ import annotations

import pytest

from watcher.docker.attribution import attribute_user, interface, is_infrastructure, is_managed


@pytest.mark.parametrize(
    ("labels", "name", "cgroup", "expected"),
    [
        ({"ds01.user": "alice", "aime.mlc.USER": "bob"}, "x._.1001", None, ("alice", "ds01.user")),
        ({"aime.mlc.USER": "bob"}, "x._.1001", None, ("bob", "aime.mlc.USER")),
        ({}, "proj._.4242", "ds01-student-carol.slice", ("4242", "name_convention")),
        (
            {"devcontainer.local_folder": "/home/dave/src/app"},
            "c",
            None,
            ("dave", "devcontainer.local_folder"),
        ),
        (
            {"com.docker.compose.project.working_dir": "/home/erin/stack"},
            "c",
            None,
            ("erin", "com.docker.compose.project.working_dir"),
        ),
        ({}, "c", "ds01-researcher-frank.slice", ("frank", "cgroup_parent")),
        ({}, "c", "/ds01.slice/ds01-student-gina.slice", ("gina", "cgroup_parent")),
        (
            {"com.docker.compose.project.working_dir": "/srv/stack"},
            "c",
            "system.slice",
            (None, None),
        ),
    ],
)
def test_chain_order(labels, name, cgroup, expected):
    """The first matching rule of the chain wins and is named in attributed_by."""
    assert tuple(attribute_user(labels, name, cgroup)) == expected


def test_name_convention_resolves_uid():
    """The uid of <name>._.<uid> is turned into a user name when an account exists."""
    who = attribute_user({}, "/proj._.1001", None, user_by_uid={1001: "alice"}.get)
    assert who == ("alice", "name_convention")


def test_numeric_user_label_stays_text():
    """A numeric user name from a label is kept as text, never coerced."""
    assert attribute_user({"ds01.user": "248835"}, "c").user == "248835"


def test_managed_markers():
    """ds01.managed=true and the legacy aime.mlc.DS01_MANAGED mark a managed container."""
    assert is_managed({"ds01.managed": "true"})
    assert is_managed({"aime.mlc.DS01_MANAGED": "True"})
    assert not is_managed({"ds01.managed": "false"})
    assert not is_managed({})


def test_infrastructure():
    """ds01.protected, ds01.monitoring and container_type=infrastructure are infrastructure."""
    assert is_infrastructure({"ds01.protected": "true"})
    assert is_infrastructure({"ds01.monitoring": "true"})
    assert is_infrastructure({"ds01.container_type": "infrastructure"})
    assert not is_infrastructure({"ds01.container_type": "devcontainer"})


def test_interface_guess():
    """The ds01.interface label wins; otherwise tool labels tell compose and devcontainers."""
    assert interface({"ds01.interface": "orchestration"}) == "orchestration"
    assert interface({"com.docker.compose.project": "p"}) == "compose"
    assert interface({"devcontainer.local_folder": "/home/a"}) == "devcontainer"
    assert interface({}) == "docker"
