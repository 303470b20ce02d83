"""The local backend's ports: two components never get the same one, and no outgoing connection can take one."""

from __future__ import annotations

from pathlib import Path

from dicomtls.backends.local import free_port


def test_ports_are_never_handed_out_twice() -> None:
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)


def test_ports_lie_below_the_range_outgoing_connections_use() -> None:
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert all(free_port() < ephemeral_low for _ in range(100))
