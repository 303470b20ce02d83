"""Render component configuration from the Jinja templates in ``templates/``.

Templates live at the top of the repository so a user can read and adapt the
exact proxy configuration a matrix cell ran against. A plugin component brings
its own template directory (``Component.templates``), searched after them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2

from dicomtls.errors import UsageError
from dicomtls.resources import TEMPLATES


_searched: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(str(TEMPLATES))]
_env = jinja2.Environment(
    loader=jinja2.ChoiceLoader(_searched),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["tojson"] = json.dumps


def add_templates(directory: Path) -> None:
    """Search ``directory`` too, after the templates already searched (a plugin's own)."""
    if not directory.is_dir():
        raise UsageError(f"template directory {directory} does not exist: ship it with the plugin's package data")
    _searched.append(jinja2.FileSystemLoader(str(directory)))


def render(template: str, **context: Any) -> str:
    """Render one template; a missing template or variable is a usage error, not a crash."""
    try:
        return _env.get_template(template).render(**context)
    except jinja2.TemplateNotFound:
        where = ", ".join(p for loader in _searched if isinstance(loader, jinja2.FileSystemLoader)
                          for p in loader.searchpath)
        raise UsageError(f"template {template!r} not found in {where}: restore it from git or set DICOMTLS_TEMPLATES"
                         ) from None
    except jinja2.UndefinedError as exc:
        raise UsageError(f"template {template!r}: {exc}") from None
