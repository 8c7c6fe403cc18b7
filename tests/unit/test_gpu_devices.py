"""GPU and MIG devices a container holds, from inspect data."""

from __future__ import annotations

import pytest

from watcher.docker.gpu_devices import gpu_devices


def inspect(env=(), labels=None, requests=None, runtime="runc"):
    return {
        "Config": {"Env": list(env), "Labels": labels or {}},
        "HostConfig": {"DeviceRequests": requests, "Runtime": runtime},
    }


def test_device_request_ids_kept_as_given():
    """DeviceIDs of a GPU device request are kept verbatim (UUIDs and MIG UUIDs)."""
    req = [
        {"Driver": "", "Count": 0, "DeviceIDs": ["GPU-1a2b", "MIG-3c4d"], "Capabilities": [["gpu"]]}
    ]
    assert gpu_devices(inspect(requests=req)) == ["GPU-1a2b", "MIG-3c4d"]


def test_count_all_and_count_n():
    """Count -1 means all GPUs; a positive count without IDs is kept as count:N."""
    assert gpu_devices(inspect(requests=[{"Driver": "nvidia", "Count": -1}])) == ["all"]
    assert gpu_devices(inspect(requests=[{"Capabilities": [["gpu"]], "Count": 2}])) == ["count:2"]


def test_non_gpu_request_ignored():
    """A device request for another driver is not a GPU."""
    assert gpu_devices(inspect(requests=[{"Driver": "other", "Count": -1}])) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("GPU-aa,GPU-bb", ["GPU-aa", "GPU-bb"]),
        ("MIG-x", ["MIG-x"]),
        ("0,1", ["0", "1"]),
        ("all", ["all"]),
        ("void", []),
        ("none", []),
        ("", []),
    ],
)
def test_env(value, expected):
    """NVIDIA_VISIBLE_DEVICES lists devices; void/none/empty mean none."""
    assert gpu_devices(inspect(env=[f"NVIDIA_VISIBLE_DEVICES={value}", "PATH=/bin"])) == expected


def test_cuda_visible_devices_and_labels_merge_without_duplicates():
    """CUDA_VISIBLE_DEVICES and the ds01 GPU labels merge in order, de-duplicated."""
    got = gpu_devices(
        inspect(
            env=["CUDA_VISIBLE_DEVICES=GPU-aa"],
            labels={"ds01.gpu.uuids": "GPU-aa,GPU-bb", "ds01.gpu_slot": "1.10"},
        )
    )
    assert got == ["GPU-aa", "GPU-bb", "1.10"]


def test_nvidia_runtime_alone_is_no_gpu():
    """Runtime=nvidia without any device signal holds no GPU."""
    assert gpu_devices(inspect(runtime="nvidia")) == []


def test_odd_shapes_do_not_raise():
    """Missing or null fields count as no devices."""
    assert gpu_devices({}) == []
    assert gpu_devices({"Config": None, "HostConfig": {"DeviceRequests": None}}) == []


def test_device_nodes_are_a_gpu_signal():
    """HostConfig.Devices mapping /dev/nvidiaN counts; the control and UVM nodes do not."""
    inspect = {
        "HostConfig": {
            "Devices": [
                {"PathOnHost": "/dev/nvidia1", "PathInContainer": "/dev/nvidia1"},
                {"PathOnHost": "/dev/nvidiactl", "PathInContainer": "/dev/nvidiactl"},
                {"PathOnHost": "/dev/nvidia-uvm", "PathInContainer": "/dev/nvidia-uvm"},
                {"PathOnHost": "/dev/nvidia-caps/nvidia-cap1"},
                "not a mapping",
            ]
        }
    }
    assert gpu_devices(inspect) == ["/dev/nvidia1"]
