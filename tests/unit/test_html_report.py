"""report.html: one self-contained page, a cell per result with its diagnosis, everything escaped, no key material.

tests/integration/test_report_browser.py opens the page of a real run in Chromium; these read the markup.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from dicomtls.report import html

from . import recorded_run as recorded
from .recorded_run import BROKEN, real_run

KEY_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"
KEY_BLOCK = f"-----BEGIN EC PRIVATE KEY-----\n{KEY_BODY}\n-----END EC PRIVATE KEY-----"


def with_unexpected() -> dict[str, Any]:
    return recorded.with_unexpected("the server wants a certificate <script>alert('x')</script>",
                                    "send a client certificate", [f"proxy: envoy: {KEY_BLOCK}"], surprise=False)


class Cells(HTMLParser):
    """The grid's cells as (data-id, data-status), and every URL the page would load or link."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[str, str]] = []
        self.urls: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "td" and "cell" in (a.get("class") or "").split():
            self.cells.append((a["data-id"] or "", a["data-status"] or ""))
        for name in ("src", "href", "srcset", "data", "action", "poster"):
            if a.get(name):
                self.urls.append((tag, name, a[name] or ""))


def parse(page: str) -> Cells:
    parser = Cells()
    parser.feed(page)
    return parser


def test_one_grid_cell_per_result_with_its_status() -> None:
    doc = with_unexpected()
    found = parse(html.render(doc)).cells
    assert sorted(cell_id for cell_id, _ in found) == sorted(c["id"] for c in doc["cells"])
    statuses = dict(found)
    assert statuses[BROKEN] == "unexpected"
    assert statuses["envoy-sni-named-hosts/envoy-named-hosts/dcmtk sni=none cert=none echo"] == "xfail"
    assert statuses["envoy-sni-named-hosts/envoy-wildcard-hosts/dcmtk sni=none cert=none echo"] == "pass"


def test_the_page_loads_nothing_from_anywhere() -> None:
    page = html.render(real_run())
    assert "default-src 'none'" in page  # the Content-Security-Policy forbids any fetch
    assert not re.search(r"<link\b|@import|url\(|<img\b|<iframe\b", page)
    for tag, attribute, url in parse(page).urls:
        assert tag == "a" and attribute == "href", (tag, attribute, url)
        assert url.startswith(("#", "logs/")), url


def test_each_environment_links_its_logs_relative_to_the_page() -> None:
    links = [url for _, _, url in parse(html.render(real_run())).urls if url.startswith("logs/")]
    assert "logs/envoy-named-hosts/envoy/access.log" in links
    assert "logs/envoy-wildcard-hosts/orthanc/output.log" in links
    assert len(links) == 6


def test_run_header_shows_versions_and_the_count() -> None:
    page = html.render(with_unexpected())
    assert "33/34 cells as expected, 1 unexpected" in page
    assert "<th>envoy</th><td>1.40.0</td>" in page
    assert "<th>dcmtk</th><td>3.6.7</td>" in page


def test_an_unexpected_cell_is_explained_in_full_above_the_grids() -> None:
    page = html.render(with_unexpected())
    section = page[page.index('<section id="unexpected">'):page.index('<section class="scenario"')]
    assert BROKEN in section
    assert "tls-cert-required" in section and "send a client certificate" in section


def test_everything_from_a_run_is_escaped() -> None:
    page = html.render(with_unexpected())
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # the page's own


def test_no_private_key_material_reaches_the_page() -> None:
    page = html.render(with_unexpected())
    assert KEY_BODY not in page
    assert "PRIVATE KEY" not in page
    assert "[private key redacted]" in page


def test_data_the_report_does_not_know_is_shown_generically() -> None:
    doc = real_run()
    doc["environments"][0]["compliance"] = {"profile": "BCP 195", "compliant": False, "notes": ["weak <dh>"]}
    doc["cells"][0]["offered"] = {"versions": ["TLSv1.2"]}
    doc["pki"] = [{"file": "server.crt", "not_after": "2027-01-01"}]
    page = html.render(doc)
    assert "<summary>compliance</summary>" in page
    assert '<span class="no">no</span>' in page and "weak &lt;dh&gt;" in page
    assert "<dt>offered</dt>" in page
    assert "<th>file</th><th>not_after</th>" in page and "<td>server.crt</td>" in page


def test_an_older_results_file_without_new_fields_still_renders() -> None:
    doc = real_run()
    for c in doc["cells"]:
        for axis in ("server_cert_check", "profile", "transport"):
            c.pop(axis, None)
    for env in doc["environments"]:
        env.pop("position", None)
        env.pop("scan", None)
    doc["run"].pop("shard", None)
    assert len(parse(html.render(doc)).cells) == 34
