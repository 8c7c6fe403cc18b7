"""The command line: the fast path, the Typer app, aliases, guided mode, help, rendering."""
