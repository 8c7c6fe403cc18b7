"""Who a container belongs to and what kind of container it is, from its labels and name.

Pure: takes plain data. The user chain, first match wins, and the matching rule is
returned as ``attributed_by`` so an admin can see why a container was attributed:

1. label ``ds01.user``
2. label ``aime.mlc.USER``
3. the container name convention ``<name>._.<uid>``
4. label ``devcontainer.local_folder=/home/<user>/...``
5. label ``com.docker.compose.project.working_dir`` under ``/home/<user>``
6. the cgroup parent ``ds01-<group>-<user>.slice``
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

_NAME_CONVENTION = re.compile(r"^/?.+\._\.(\d+)$")
_HOME = re.compile(r"^/home/([^/]+)(?:/|$)")
_SLICE = re.compile(r"^ds01-([^-/]+)-([^/]+)\.slice$")
_TRUE = frozenset({"true", "1", "yes", "on"})


class Attribution(NamedTuple):
    """The user a container is attributed to, and the rule that said so (both None: unknown)."""

    user: str | None
    attributed_by: str | None


def attribute_user(
    labels: Mapping[str, str],
    name: str,
    cgroup_parent: str | None = None,
    *,
    user_by_uid: Callable[[int], str | None] | None = None,
) -> Attribution:
    """Apply the attribution chain; never raises.

    ``user_by_uid`` turns the uid of the name convention into a user name; without
    it, or when the uid has no account, the uid itself (as text) is the user.
    """
    for label in ("ds01.user", "aime.mlc.USER"):
        value = (labels.get(label) or "").strip()
        if value:
            return Attribution(value, label)
    match = _NAME_CONVENTION.match(name or "")
    if match:
        uid = int(match.group(1))
        user = user_by_uid(uid) if user_by_uid is not None else None
        return Attribution(user or str(uid), "name_convention")
    for label in ("devcontainer.local_folder", "com.docker.compose.project.working_dir"):
        match = _HOME.match(labels.get(label) or "")
        if match:
            return Attribution(match.group(1), label)
    if cgroup_parent:
        match = _SLICE.match(cgroup_parent.rstrip("/").rsplit("/", 1)[-1])
        if match:
            return Attribution(match.group(2), "cgroup_parent")
    return Attribution(None, None)


def is_managed(labels: Mapping[str, str]) -> bool:
    """Tell whether the container carries the managed marker (or its legacy spelling)."""
    for label in ("ds01.managed", "aime.mlc.DS01_MANAGED"):
        if (labels.get(label) or "").strip().lower() in _TRUE:
            return True
    return False


def is_infrastructure(labels: Mapping[str, str]) -> bool:
    """Tell whether it is infrastructure, which is never flagged as unmanaged."""
    for label in ("ds01.protected", "ds01.monitoring"):
        if (labels.get(label) or "").strip().lower() in _TRUE:
            return True
    return (labels.get("ds01.container_type") or "").strip().lower() == "infrastructure"


def container_type(labels: Mapping[str, str]) -> str | None:
    """Return the ``ds01.container_type`` label, if any."""
    return (labels.get("ds01.container_type") or "").strip() or None


def interface(labels: Mapping[str, str]) -> str:
    """How the container was made: the ``ds01.interface`` label, else guessed from tool labels."""
    value = (labels.get("ds01.interface") or "").strip()
    if value:
        return value
    if any(key.startswith("devcontainer.") for key in labels):
        return "devcontainer"
    if "com.docker.compose.project" in labels:
        return "compose"
    if any(key.startswith("aime.mlc.") for key in labels):
        return "mlc"
    return "docker"
