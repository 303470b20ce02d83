"""The fault axis of a scenario: which cells may inject which fault, and the default-off faults scenario."""

from __future__ import annotations

from dicomtls.scenario import load_scenario, load_scenarios, parse_scenario
from tests.unit.test_scenario import SOURCE, error_for, variant


def test_fault_cells_carry_the_fault_in_their_id() -> None:
    text = variant("    sni: [none, right]\n", "    sni: right\n    operation: store-large\n"
                   "    fault: [none, proxy-restart]\n")
    ids = [c.id for c in parse_scenario(text, SOURCE).cells()]
    assert ids == ["under-test/edge/pynetdicom sni=right cert=none store-large",
                   "under-test/edge/pynetdicom sni=right cert=none store-large fault=proxy-restart"]


def test_a_fault_needs_an_object_to_send_again() -> None:
    message = error_for(variant("    sni: [none, right]\n", "    fault: upstream-down\n"))
    assert "use operation store-ct or store-large" in message


def test_a_kill_mid_transfer_needs_pynetdicom_sending_a_large_object() -> None:
    message = error_for(variant("  - client: pynetdicom\n    sni: [none, right]\n",
                                "  - client: dcmtk\n    operation: store-large\n    fault: upstream-restart\n"))
    assert "use client pynetdicom and operation store-large" in message


def test_proxy_restart_needs_a_proxy() -> None:
    text = variant("    proxy: { kind: envoy, client_cert: optional }\n",
                   "    server: { kind: orthanc, tls: true, client_cert: optional }\n",
                   variant("    sni: [none, right]\n", "    sni: right\n    operation: store-large\n"
                           "    fault: proxy-restart\n"))
    assert "fault proxy-restart needs a proxy, and edge has none" in error_for(text)


def test_an_unknown_fault_is_named_with_the_choices() -> None:
    message = error_for(variant("    sni: [none, right]\n", "    operation: store-ct\n    fault: slow-link\n"))
    assert "upstream-down" in message and "proxy-restart" in message


def test_the_faults_scenario_covers_every_proxy_and_is_not_run_by_default() -> None:
    scenario = load_scenario("faults")
    assert not scenario.default
    assert "faults" not in [s.name for s in load_scenarios(None)]
    kinds = {env.proxy.kind for env in scenario.environments if env.proxy is not None}
    assert kinds == {"envoy", "istio-gateway", "traefik", "nginx", "haproxy"}
    by_fault = {c.probe.fault: c.expected_reason for c in scenario.cells()}
    assert by_fault == {"upstream-down": "upstream-unreachable", "upstream-restart": "connection-lost",
                        "proxy-restart": "connection-lost"}

