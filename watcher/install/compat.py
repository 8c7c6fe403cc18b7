"""The ``ds01_events.py`` that `install --compat` puts where the old scripts look for it.

The old system's scripts put /opt/ds01-infra/scripts/lib first on ``sys.path`` and
``import ds01_events``, or run ``python3 .../ds01_events.py log TYPE key=value``. A
module file of that name in that directory is found before any package, so the file
placed there is a loader, not a copy: imported, it loads the ``ds01_events`` package
installed in the venv under the same name and puts it in ``sys.modules`` in its own
place (the import statement hands back whatever ``sys.modules`` holds once the file
has run); run as a program, it hands its arguments to ``python -m ds01_events`` in the venv.
"""

from __future__ import annotations

_TEMPLATE = '''\
#!/usr/bin/python3
"""ds01_events for the scripts of the system ds01-watcher replaces: loads the real package.

Installed by `ds01-watcher install --compat`; removed by `ds01-watcher uninstall`.
Nothing here is a copy: imported, this file loads the ds01_events package of
{venv} in its own place; run as `python3 ds01_events.py log TYPE key=value ...`
it runs that venv's `python -m ds01_events` with the same arguments.
"""

import os
import sys

_VENV = {venv!r}
_SITE = {site!r}
_PYTHON = {version!r}


def _load():
    import importlib.util

    if "%d.%d" % sys.version_info[:2] != _PYTHON:
        raise ImportError(
            "ds01_events in %s is installed for Python %s, this is %d.%d: run the"
            " script with /usr/bin/python3" % (_VENV, _PYTHON, *sys.version_info[:2])
        )
    package = os.path.join(_SITE, "ds01_events")
    spec = importlib.util.spec_from_file_location(
        "ds01_events", os.path.join(package, "__init__.py"), submodule_search_locations=[package]
    )
    if spec is None or spec.loader is None or not os.path.isdir(package):
        raise ImportError("ds01_events is not installed in %s: run ds01-watcher install" % _VENV)
    # Its dependencies (msgspec) come from the venv, after everything the script has.
    if _SITE not in sys.path:
        sys.path.append(_SITE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["ds01_events"] = module
    spec.loader.exec_module(module)


def _main(args):
    # The old command line (log, types), as ds01_events.legacy.main keeps it.
    python = _VENV + "/bin/python"
    os.execv(python, [python, "-m", "ds01_events", *args])


if __name__ == "__main__":
    _main(sys.argv[1:])
else:
    _load()
'''


def shim_text(venv: str, site_packages: str) -> str:
    """The loader's source, naming the venv and its site-packages directory."""
    version = site_packages.rstrip("/").split("/")[-2].removeprefix("python")
    return _TEMPLATE.format(venv=venv, site=site_packages, version=version)
