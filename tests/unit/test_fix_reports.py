"""The Fixes section of console, summary.md and report.html, from the fixes of real `invoke fix` runs (Korthweb's
Traefik manifests, Orthweb's Envoy bootstrap): ✔ ✘ ⚠ – per candidate, like cells together, links to patches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

from dicomtls.report import html, markdown
from dicomtls.report.console import print_fixes
from dicomtls.report.fixes import grouped, rows

from .recorded_run import real_run

CAPTURED = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "captured_fixes.json").read_text())
COMBINED = "fixes/traefik-orthanc-dicom/catch-all-route+default-certificate.patch"


def with_fixes(which: str) -> dict[str, Any]:
    return {**real_run(), "fixes": CAPTURED[which]}


def test_clients_without_sni_that_fail_alike_are_one_entry() -> None:
    entries = grouped(rows(CAPTURED["traefik"]))
    first_cells, trials = entries[0]
    assert [c.cell for c in first_cells][:2] == ["dcmtk sni=none cert=none echo", "dcmtk sni=none cert=none store-ct"]
    marks = {t.candidate: (t.mark, t.outcome) for t in trials}
    assert marks["catch-all-route"] == ("✘", "tls-unknown-ca")
    assert marks["catch-all-route+default-certificate"] == ("✔", "pass")
    names = {c.cell for c in first_cells}
    assert not any(o.split(": ", 1)[0] in names for t in trials for o in t.others)


def test_summary_links_the_proven_patch_and_shows_what_it_costs() -> None:
    text = markdown.render(with_fixes("envoy"))
    section = text[text.index("### Fixes"):text.index("### Expected failures")]
    assert "⚠ server-config `add-cipher-aes128-sha`" in section
    assert "[patch](fixes/envoy-bootstrap-envoy/add-cipher-aes128-sha.patch)" in section
    assert "PS3.15: B.10 ✔ → ✘" in section and "not forward secret" in section


def test_report_page_has_a_fixes_section_with_patch_links() -> None:
    page = html.render(with_fixes("traefik"))
    section = page[page.index('<section id="fixes">'):page.index('<section id="environments">')]
    assert f'<a class="patch" href="{COMBINED}">patch</a>' in section
    assert 'class="fix-not-tried"' in section and "cannot be proven here" in section
    assert '<section class="extra"><h2>fixes' not in page  # shown as its own section, not as unknown data


def test_console_names_each_candidate_once_per_entry() -> None:
    console = Console(width=240, record=True)
    print_fixes(CAPTURED["traefik"], console)
    text = console.export_text()
    assert text.count("✔ server-config catch-all-route+default-certificate: pass") == 2  # no SNI; and none/pynetdicom
    assert f"patch: {COMBINED}" in text
    assert "– client-side client-sends-sni: not tried: dcmtk sends SNI from 3.6.8 on" in text
