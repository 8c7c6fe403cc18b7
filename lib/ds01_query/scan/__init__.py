"""Bytes to matches: the full-file scan behind every filter that is not a time bound."""
