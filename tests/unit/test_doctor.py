"""`dicomtls doctor` names one apt-get line for what is missing, and nothing for what is not a package."""

from __future__ import annotations

from dicomtls.doctor import Check, install_command


def missing(name: str, *packages: str) -> Check:
    return Check(name, "purpose", None, problem=f"{name} not found", packages=packages)


def test_the_install_line_names_each_missing_package_once_and_nothing_present() -> None:
    checks = [missing("nginx", "nginx", "libnginx-mod-stream"), Check("Orthanc", "server", "/usr/sbin/Orthanc"),
              missing("nginx-module", "libnginx-mod-stream"), missing("HAProxy", "haproxy")]
    command = install_command(checks)
    assert command is not None
    assert command.split("--no-install-recommends ")[1].split() == ["nginx", "libnginx-mod-stream", "haproxy"]
    assert "orthanc" not in command


def test_nothing_to_install_when_only_a_running_engine_is_missing() -> None:
    engine = Check("Docker", "backend", None, problem="no engine answers", hint="start the engine")
    assert install_command([engine]) is None
