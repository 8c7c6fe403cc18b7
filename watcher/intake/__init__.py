"""Scripts' events in: the ingest socket, the per-uid rate limit, the spool drain."""
