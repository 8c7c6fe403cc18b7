"""GPU-side detection: NVML snapshots, /proc mapping, classification (pure)."""
