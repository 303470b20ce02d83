"""Where the files dicomtls runs with are: templates, scenarios (with their manifests) and image recipes.

They live at the top of the repository, where a user reads and adapts them; ``src/dicomtls/_data/`` links
to them, so a wheel carries copies and a clone (an editable install, or ``PYTHONPATH=src``) reads the
top-level files themselves. One lookup through importlib.resources serves both, and finds the files of the
package that is really imported, never another checkout's.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path


def data_dir(name: str) -> Path:
    """``templates``, ``scenarios`` or ``images`` of the imported package, as a directory on disk."""
    # Wheels install as plain files, so the traversable is a real path; str() keeps that true for mypy.
    return Path(str(files("dicomtls").joinpath("_data", name)))


TEMPLATES = Path(os.environ.get("DICOMTLS_TEMPLATES") or data_dir("templates"))
"""DICOMTLS_TEMPLATES points at a user's own copy of templates/ to run adapted proxy configurations."""
SCENARIOS = data_dir("scenarios")
IMAGES = data_dir("images")
