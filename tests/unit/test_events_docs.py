"""Every ds01-events option and older form is documented in --info and the docs page."""

from __future__ import annotations

from pathlib import Path

import pytest

from ds01_query.cli.help_text import INFO
from ds01_query.cli.main import _FLAG_FIELDS, _NO_ARG, _ONE_ARG, _VALUE_FIELDS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "ds01-events.md").read_text()
OPTIONS = sorted(o for o in {*_VALUE_FIELDS, *_FLAG_FIELDS} if o.startswith("--"))
FORMS = sorted({*_ONE_ARG, *_NO_ARG, "tail", "types", "verify"})


@pytest.mark.parametrize("option", OPTIONS)
def test_option_documented(option: str) -> None:
    """The option appears in the --info reference and in docs/ds01-events.md."""
    assert option in INFO
    assert f"`{option}" in DOC


@pytest.mark.parametrize("form", FORMS)
def test_older_form_documented(form: str) -> None:
    """The command or older form appears in the --info reference and the docs page."""
    assert form in INFO
    assert f"`{form}" in DOC or f"events {form}`" in DOC
