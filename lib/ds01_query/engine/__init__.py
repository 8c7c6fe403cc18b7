"""The query engine: filters, time specs, log files and rotation, decoding, summary, verify."""
