"""Putting the service on a host and taking it off: plan, apply, manifest, --compat."""
