"""The Docker source: event stream, facts from inspect, lifecycle and attribution, reconcile."""
