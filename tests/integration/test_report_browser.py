"""A real run's reports, read as a person and a CI system read them: report.html in headless Chromium
(Debian's /usr/bin/chromium driven by Playwright), summary.md, junit.xml and the logs beside them."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, leftovers_under, run_invoke

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
DOCS_SCREENSHOT = ROOT / "docs" / "assets" / "report.png"
DOCS_SCREENSHOT_OF = DOCS_SCREENSHOT.with_suffix(".png.sha256")
"""The hash of what the report looks like (its template, style, script and renderer) when the picture was taken."""


def report_look() -> str:
    """A hash of everything that decides how report.html looks: the picture is retaken when it changes, and only
    then, so a test run leaves the clone as it found it."""
    import hashlib

    sources = sorted((ROOT / "templates" / "report").iterdir()) + [ROOT / "src" / "dicomtls" / "report" / "html.py"]
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()
"""The report as the docs show it: taken by this test, so the picture is of report.html as it renders today."""
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("report")
    proc = run_invoke(["matrix", "--scenario", "envoy-sni-named-hosts", "--out", str(tmp / "out")], tmp)
    left = leftovers_under(tmp)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert left == (set(), set()), left
    out = tmp / "out"
    return {"out": out, "tmp": tmp, "stdout": proc.stdout, "results": json.loads((out / "results.json").read_text())}


@pytest.fixture(scope="module")
def browser(run: dict[str, Any]) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (Debian's chromium package; install.sh installs it on Debian)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(run["tmp"] / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def page(run: dict[str, Any], browser: Any) -> Any:
    page = browser.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto((run["out"] / "report.html").as_uri())
    page.requested = requested
    return page


def test_a_run_writes_all_four_reports_and_names_them(run: dict[str, Any]) -> None:
    for name in ("results.json", "junit.xml", "summary.md", "report.html"):
        assert (run["out"] / name).stat().st_size > 0, name
        assert str(run["out"] / name) in run["stdout"]
    assert (run["out"] / "summary.md").read_text().startswith("## ✅ dicomtls: 34/34 cells as expected")


def test_every_environment_keeps_its_logs_under_logs_and_results_point_at_them(run: dict[str, Any]) -> None:
    envs = run["results"]["environments"]
    assert [e["name"] for e in envs] == ["envoy-named-hosts", "envoy-wildcard-hosts"]
    for env in envs:
        assert set(env["logs"]) == {"orthanc", "envoy", "envoy:access.log"}
        for link in env["logs"].values():
            assert link.startswith(f"logs/{env['name']}/"), link
            assert (run["out"] / link).stat().st_size > 0, link
    access = (run["out"] / "logs" / "envoy-named-hosts" / "envoy" / "access.log").read_text()
    assert "flags=NR" in access  # the connections without SNI that matched no filter chain


def test_no_output_holds_private_key_material(run: dict[str, Any]) -> None:
    checked = 0
    for path in run["out"].rglob("*"):
        if path.is_file() and "pki" not in path.relative_to(run["out"]).parts:
            assert b"PRIVATE KEY" not in path.read_bytes(), path
            checked += 1
    assert checked > 10


def test_junit_has_a_testcase_per_cell_as_junitparser_reads_it(run: dict[str, Any]) -> None:
    from junitparser import JUnitXml

    cases = [case for suite in JUnitXml.fromfile(str(run["out"] / "junit.xml")) for case in suite]
    assert [f"{c.classname.replace('.', '/', 1)}/{c.name}" for c in cases] == [c["id"] for c in run["results"]["cells"]]
    assert all(c.is_passed for c in cases)


def test_the_grid_has_one_cell_per_result(run: dict[str, Any], page: Any) -> None:
    cells = run["results"]["cells"]
    assert page.locator("td.cell").count() == len(cells) == 34
    assert page.locator("td.cell.pass").count() == sum(1 for c in cells if c["actual"] == "pass")
    assert page.locator("td.cell.xfail").count() == sum(1 for c in cells if c["actual"] == "fail")
    assert page.locator("#verdict").inner_text() == "34/34 cells as expected, 0 unexpected"


def test_clicking_a_cell_opens_its_diagnosis(run: dict[str, Any], page: Any) -> None:
    record = next(c for c in run["results"]["cells"]
                  if c["environment"] == "envoy-named-hosts" and c["client"] == "dcmtk" and c["actual"] == "fail")
    cell = page.locator(f'td.cell[data-id="{record["id"]}"]')
    diagnosis = cell.locator(".diag")
    assert not diagnosis.is_visible()
    cell.locator("summary").click()
    assert diagnosis.is_visible()
    text = diagnosis.inner_text()
    assert record["reason"] == "tls-no-matching-sni"
    assert record["reason"] in text and record["summary"] in text and record["fix"] in text
    assert "flags=NR" in text  # the proxy's log line for this very connection
    page.screenshot(path=str(run["out"] / "report.png"), full_page=True)
    assert (run["out"] / "report.png").stat().st_size > 20_000
    page.keyboard.press("Escape")
    assert not diagnosis.is_visible()


def test_the_row_filter_shows_only_rows_with_failures(page: Any) -> None:
    rows = page.locator("table.grid tbody tr")
    assert sum(rows.nth(i).is_visible() for i in range(rows.count())) == 16
    page.select_option("#row-filter", "failures")
    assert sum(rows.nth(i).is_visible() for i in range(rows.count())) == 8  # 6 named-hosts rows, 2 wildcard
    page.select_option("#row-filter", "unexpected")
    assert sum(rows.nth(i).is_visible() for i in range(rows.count())) == 0
    page.select_option("#row-filter", "all")


def test_the_page_fetched_nothing_but_itself(run: dict[str, Any], page: Any) -> None:
    assert page.requested == [(run["out"] / "report.html").as_uri()]


def test_log_links_open_the_environment_logs(run: dict[str, Any], browser: Any, page: Any) -> None:
    links = page.locator("a.log")
    assert links.count() == 6
    href = page.locator('#env-' + run["results"]["environments"][0]["key"] + ' a.log', has_text="access.log")
    target = (run["out"] / href.get_attribute("href")).as_uri()
    log_page = browser.new_page()
    try:
        log_page.goto(target)
        assert "downstream=127.0.0.1:" in log_page.inner_text("body")
    finally:
        log_page.close()


def test_the_docs_picture_of_the_report_is_retaken_when_the_report_looks_different(run: dict[str, Any], browser: Any) -> None:
    record = next(c for c in run["results"]["cells"]
                  if c["environment"] == "envoy-named-hosts" and c["client"] == "dcmtk" and c["actual"] == "fail")
    page = browser.new_page()  # its own page: no other test's clicks in it
    try:
        page.set_viewport_size({"width": 1280, "height": 1000})
        page.goto((run["out"] / "report.html").as_uri())
        cell = page.locator(f'td.cell[data-id="{record["id"]}"]')
        cell.locator("summary").click()
        cell.locator(".diag").wait_for(state="visible")
        picture = page.screenshot(animations="disabled", caret="hide")
    finally:
        page.close()
    assert picture.startswith(b"\x89PNG") and len(picture) > 20_000
    look = report_look()
    if DOCS_SCREENSHOT.exists() and DOCS_SCREENSHOT_OF.exists() and DOCS_SCREENSHOT_OF.read_text().strip() == look:
        return  # the docs already show the report as it looks now
    # Written whole or not at all: a run stopped midway never leaves the docs a truncated picture.
    partial = DOCS_SCREENSHOT.with_name(f".{DOCS_SCREENSHOT.name}.{os.getpid()}")
    partial.write_bytes(picture)
    os.replace(partial, DOCS_SCREENSHOT)
    DOCS_SCREENSHOT_OF.write_text(look + "\n")
