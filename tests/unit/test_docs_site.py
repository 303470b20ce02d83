"""The docs site: its reference pages are what the code says today, and MkDocs builds it without a warning."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dicomtls import docs_reference

ROOT = Path(__file__).resolve().parents[2]


def test_generated_reference_pages_match_the_code() -> None:
    stale = docs_reference.stale(ROOT / "docs")
    assert not stale, f"docs pages older than the code: {', '.join(stale)}; run `{docs_reference.REGENERATE}`"


def test_a_results_field_without_a_description_stops_the_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    notes = {k: v for k, v in docs_reference.RESULT_NOTES.items() if k != "cells.command"}
    monkeypatch.setattr(docs_reference, "RESULT_NOTES", notes)
    with pytest.raises(ValueError, match="cells.command has no description"):
        docs_reference.results_page()


def test_a_description_of_a_gone_results_field_stops_the_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docs_reference, "RESULT_NOTES", {**docs_reference.RESULT_NOTES, "cells.colour": "gone"})
    with pytest.raises(ValueError, match="no longer has: cells.colour"):
        docs_reference.results_page()


def test_every_reason_and_task_option_is_in_the_reference() -> None:
    from dicomtls.diagnose import Reason
    from dicomtls.tasks import ns

    reasons = docs_reference.reasons_page()
    assert all(f"| `{reason}` |" in reasons for reason in Reason)
    cli = docs_reference.cli_page()
    for context in ns.to_contexts():
        assert f"## {context.name}\n" in cli
        assert all(flags in cli for flags, _ in context.help_tuples())


def test_the_readme_is_a_front_page_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    assert "./install.sh && .venv/bin/invoke matrix" in readme
    assert "\n.venv/bin/pytest\n" in readme  # .ci/run runs the test command the README gives


def test_mkdocs_builds_the_site_strictly(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (it comes with the test extra: pip install -e '.[test]')")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})  # Material's banner about its successor
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "reference" / "reasons" / "index.html").is_file()
