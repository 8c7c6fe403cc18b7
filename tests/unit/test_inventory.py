"""The workload inventory: the shape existing readers expect, detected_at kept, atomic replace."""

from __future__ import annotations

import json
import os
import stat
import threading

from detectors.classify import ContainerFacts, classify
from detectors.inventory import (
    build_inventory,
    origin_of,
    read_inventory,
    utc_iso,
    write_inventory,
)
from tests.unit.gpu_snapshots import UUID, host, on_gpu, snapshot

CONTAINER_KEYS = {
    "id",
    "name",
    "origin",
    "user",
    "has_gpu",
    "gpu_devices",
    "status",
    "image",
    "detected_at",
}
PROCESS_KEYS = {"pid", "user", "cmdline", "gpu_memory_mb", "gpu_uuid", "detected_at"}
CID = "0123456789ab" + "f" * 52


def _inventory(now=1000.0, previous=None):
    facts = [
        ContainerFacts(
            id=CID,
            name="alice-job",
            user="alice",
            managed=True,
            gpu_devices=("0",),
            image="pytorch:24.01",
            origin="ds01-managed",
            status="running",
        ),
        ContainerFacts(id="9" * 64, name="adhoc", origin="raw-docker", status="exited"),
    ]
    snap = snapshot(on_gpu(10, 1, memory=2048))
    processes = classify(snap, {10: host(10, uid=1001)}, {}, user_by_uid={1001: "bob"}.get)
    return build_inventory(now, facts, processes, computing={"9" * 64}, previous=previous)


def test_shape_and_keys():
    """Top-level keys, 12-character container ids, pid keys and each entry's keys."""
    inventory = _inventory()
    assert set(inventory) == {"last_scan", "containers", "host_processes"}
    assert inventory["last_scan"] == utc_iso(1000.0) == "1970-01-01T00:16:40.000000Z"
    assert set(inventory["containers"]) == {CID[:12], "9" * 12}
    entry = inventory["containers"][CID[:12]]
    assert set(entry) == CONTAINER_KEYS
    assert entry["id"] == CID[:12]
    assert (entry["origin"], entry["user"], entry["has_gpu"], entry["gpu_devices"]) == (
        "ds01-managed",
        "alice",
        True,
        ["0"],
    )
    adhoc = inventory["containers"]["9" * 12]
    assert (adhoc["has_gpu"], adhoc["user"], adhoc["status"]) == (True, "unknown", "exited")
    (key,) = inventory["host_processes"]
    assert key == "10"
    process = inventory["host_processes"]["10"]
    assert set(process) == PROCESS_KEYS
    assert process == {
        "pid": 10,
        "user": "bob",
        "cmdline": "python3",
        "gpu_memory_mb": 2048,
        "gpu_uuid": UUID[1],
        "detected_at": "1970-01-01T00:16:40.000000Z",
    }


def test_cmdline_is_the_program_name_only():
    """The world-readable file never holds arguments (they may carry secrets)."""
    assert "train.py" not in json.dumps(_inventory())


def test_detected_at_survives_rewrites(tmp_path):
    """A second write keeps each entry's detected_at and moves last_scan."""
    path = tmp_path / "workload-inventory.json"
    write_inventory(path, _inventory(now=1000.0))
    again = _inventory(now=2000.0, previous=read_inventory(path))
    assert again["last_scan"] == utc_iso(2000.0)
    assert again["containers"][CID[:12]]["detected_at"] == utc_iso(1000.0)
    assert again["host_processes"]["10"]["detected_at"] == utc_iso(1000.0)


def test_round_trip_and_world_readable(tmp_path):
    """What is written reads back equal, as JSON, with mode 0644 whatever the umask."""
    path = tmp_path / "workload-inventory.json"
    old = os.umask(0o077)
    try:
        write_inventory(path, _inventory())
    finally:
        os.umask(old)
    assert json.loads(path.read_text()) == _inventory()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["workload-inventory.json"]


def test_atomic_replace_under_a_concurrent_reader(tmp_path):
    """A reader looping while the file is rewritten never sees a torn or empty file."""
    path = tmp_path / "workload-inventory.json"
    write_inventory(path, _inventory())
    stop = threading.Event()
    bad: list[str] = []
    reads = [0]

    def reader():
        while not stop.is_set():
            try:
                value = json.loads(path.read_bytes())
            except ValueError as exc:
                bad.append(repr(exc))
                continue
            reads[0] += 1
            if set(value) != {"last_scan", "containers", "host_processes"}:
                bad.append("shape")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(300):
            write_inventory(path, _inventory(now=1000.0 + i))
    finally:
        stop.set()
        thread.join()
    assert bad == []
    assert reads[0] > 0


def test_origin_rules():
    """Managed first, then devcontainer labels, compose, the vsc- prefix, else raw-docker."""
    assert origin_of(managed=True, label_keys={"devcontainer.x"}, name="a") == "ds01-managed"
    assert origin_of(managed=False, label_keys={"devcontainer.local_folder"}, name="a") == (
        "devcontainer"
    )
    assert origin_of(managed=False, label_keys={"com.docker.compose.project"}, name="a") == (
        "compose"
    )
    assert origin_of(managed=False, label_keys=set(), name="vsc-proj-1") == "devcontainer"
    assert origin_of(managed=False, label_keys=set(), name="x") == "raw-docker"


def test_unreadable_previous_inventory_is_none(tmp_path):
    """A missing or foreign previous file is simply not used."""
    assert read_inventory(tmp_path / "missing.json") is None
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert read_inventory(tmp_path / "bad.json") is None


def test_incomplete_container_view_keeps_the_previous_containers(tmp_path):
    """Just after a start (Docker not listed yet) earlier containers stay; given ones update."""
    first = _inventory()
    facts = [ContainerFacts(id="9" * 64, name="adhoc-renamed", origin="raw-docker")]
    again = build_inventory(2000.0, facts, [], previous=first, containers_complete=False)
    assert set(again["containers"]) == {CID[:12], "9" * 12}
    assert again["containers"]["9" * 12]["name"] == "adhoc-renamed"
    complete = build_inventory(2000.0, facts, [], previous=first)
    assert set(complete["containers"]) == {"9" * 12}
