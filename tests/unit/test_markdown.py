"""summary.md: what a reader of a CI run page needs, unexpected cells first, in Markdown GitHub shows as written."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from dicomtls.diff import compare
from dicomtls.report import markdown

from . import recorded_run as recorded
from .recorded_run import BROKEN, real_run

KEY_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"
KEY_BLOCK = f"-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n-----END PRIVATE KEY-----"


def with_unexpected() -> dict[str, Any]:
    return recorded.with_unexpected("the server requires a client certificate | and the client sent <none>",
                                    "send a client certificate (dcmtk: +tls KEY CRT)",
                                    ["client: TLS alert certificate required", f"proxy: envoy: {KEY_BLOCK}"])


def test_an_all_green_run_says_so_in_its_heading() -> None:
    text = markdown.render(real_run())
    assert text.splitlines()[0] == "## ✅ dicomtls: 34/34 cells as expected"
    assert "Unexpected cells" not in text
    assert "❌" not in text.split("### envoy-sni-named-hosts")[1].split("### Expected failures")[0]


def test_unexpected_cells_come_first_with_reason_and_fix() -> None:
    text = markdown.render(with_unexpected())
    assert text.splitlines()[0] == "## ❌ dicomtls: 2 unexpected, 32/34 cells as expected"
    first_table = text.index("### envoy-sni-named-hosts")
    section = text.index("### Unexpected cells")
    assert section < first_table
    unexpected = text[section:first_table]
    assert "expected pass, got fail (tls-cert-required)" in unexpected
    assert "fix: send a client certificate (dcmtk: +tls KEY CRT)" in unexpected
    assert "got pass" in unexpected and "expected fail (tls-hostname-mismatch)" in unexpected


def test_the_table_marks_pass_expected_failure_and_unexpected_with_emoji() -> None:
    text = markdown.render(with_unexpected())
    rows = [l for l in text.splitlines() if l.startswith("| ")]
    assert rows[0] == "| environment | client | sni | client cert | echo | store-ct | store-large |"
    named_right = next(l for l in rows if "pynetdicom | right | none" in l)
    assert named_right.split(" | ")[4:6] == ["❌ tls-cert-required", "✅"]
    assert "🟡 tls-no-matching-sni" in rows[1]
    wildcard_wrong = [l for l in rows if "pynetdicom | wrong | none" in l][1]
    assert "❌ passed, expected tls-hostname-mismatch" in wildcard_wrong
    cells = sum(l.count("✅") + l.count("🟡") + l.count("❌") for l in rows)
    assert cells == 34


def test_expected_failures_are_listed_by_reason_with_their_fix() -> None:
    text = markdown.render(real_run())
    legend = text.split("### Expected failures")[1].split("###")[0]
    assert "🟡 `tls-no-matching-sni` ×12:" in legend
    assert "🟡 `tls-hostname-mismatch` ×4:" in legend
    assert "fix: issue the server certificate" in legend


def test_environments_link_their_logs_relative_to_the_summary() -> None:
    text = markdown.render(real_run())
    assert "[envoy:access.log](logs/envoy-named-hosts/envoy/access.log)" in text
    assert "| envoy-wildcard-hosts | envoy-sni-named-hosts | client → envoy → orthanc |" in text


def test_no_private_key_material_reaches_the_summary() -> None:
    text = markdown.render(with_unexpected())
    assert KEY_BODY not in text
    assert "PRIVATE KEY" not in text
    assert "[private key redacted]" in text


def test_text_from_a_run_cannot_break_the_table_or_inject_html() -> None:
    doc = with_unexpected()
    doc["environments"][0]["error"] = "envoy exited with status 1: line one | line two | <b>three</b>"
    text = markdown.render(doc)
    assert "<none>" not in text and "&lt;none&gt;" in text
    assert "<b>" not in text
    row = next(l for l in text.splitlines() if l.startswith("| envoy-named-hosts ❌ did not start"))
    assert len(re.findall(r"(?<!\\)\|", row)) == 5  # four columns, the log's own pipes escaped


def test_the_run_line_holds_everything_that_depends_on_when_the_run_was() -> None:
    doc = real_run()
    later = copy.deepcopy(doc)
    later["run"]["started"], later["run"]["wall_s"] = "2030-01-01T00:00:00+00:00", 99.0
    a, b = markdown.render(doc).splitlines(), markdown.render(later).splitlines()
    differing = [x for x, y in zip(a, b) if x != y]
    assert len(differing) == 1 and differing[0].startswith(markdown.RUN_LINE)


def test_changes_since_a_baseline_list_regressions() -> None:
    changes = compare(real_run(), with_unexpected())
    text = markdown.render(with_unexpected(), changes)
    section = text.split("### Since the baseline:")[1].split("###")[0]
    assert section.startswith(" 1 regressions, 1 other changes")
    assert f"❌ regression {BROKEN}: pass → fail (tls-cert-required)" in section


def test_a_long_list_of_unexpected_cells_is_capped() -> None:
    doc = real_run()
    for c in doc["cells"]:
        c.update(verdict="unexpected")
    doc["cells"] = doc["cells"] * 2
    text = markdown.render(doc)
    assert f"… and {68 - markdown.MAX_DETAILED} more" in text


def test_a_manifest_run_says_which_documented_commands_work_and_why_the_others_fail() -> None:
    doc = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "results_manifests_korthweb_gitops.json")
                     .read_text())
    text = markdown.render(doc)
    block = text.split("your documented commands:", 1)[1].split("**", 1)[0]
    assert "- ✔ `echoscu +tla -rc +cf ca.crt HOST PORT` (no SNI)" in block
    assert "- ✔ `echoscu +tla -ic HOST PORT`" in block
    assert re.search(r"- ✘ `storescu -c AET@HOST:PORT --tls12 --tls-aes` \(.*\): tls-no-shared-cipher \(client and "
                     r"server have no cipher suite in common", block)


def test_a_run_with_expectations_lists_no_documented_commands() -> None:
    assert "your documented commands" not in markdown.render(real_run())
