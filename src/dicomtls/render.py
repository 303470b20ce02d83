"""Render component configuration from the Jinja templates in ``templates/``.

Templates live at the top of the repository so a user can read and adapt the
exact proxy configuration a matrix cell ran against.
"""

from __future__ import annotations

import json
from typing import Any

import jinja2

from dicomtls.errors import UsageError
from dicomtls.resources import TEMPLATES


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["tojson"] = json.dumps


def render(template: str, **context: Any) -> str:
    """Render one template; a missing template or variable is a usage error, not a crash."""
    try:
        return _env.get_template(template).render(**context)
    except jinja2.TemplateNotFound:
        raise UsageError(f"template {template!r} not found in {TEMPLATES}: restore it from git or set DICOMTLS_TEMPLATES") from None
    except jinja2.UndefinedError as exc:
        raise UsageError(f"template {template!r}: {exc}") from None
