"""A client is named as a string only by its own module (dicomtls.clients) and the code that runs it
(dicomtls.probes): everything else asks the registry, so a new client is one module there plus its runner."""

from __future__ import annotations

from dicomtls.clients import names

from .registered_names import literals

OWNERS = ("clients/", "probes/")
"""Where naming a client is the point: the client modules that declare them, and the runners."""
EXCEPTIONS: dict[tuple[str, str], str] = {}
"""(module, client) -> why that module may name it. None today."""


def client_literals() -> list[tuple[str, int, str]]:
    """(module, line, name) for every string constant outside the owners that is exactly a registered client."""
    return literals(set(names()), OWNERS)


def test_no_module_outside_the_clients_names_a_client() -> None:
    named = [f"{module}:{line}: {name!r}" for module, line, name in client_literals()
             if (module, name) not in EXCEPTIONS]
    assert not named, ("these name a client by string: declare the decision on the client "
                       "(dicomtls.clients.ClientKind) and look it up instead:\n" + "\n".join(named))


def test_every_exception_is_still_needed() -> None:
    used = {(module, name) for module, _, name in client_literals()}
    assert set(EXCEPTIONS) <= used, f"no longer needed, remove them: {sorted(set(EXCEPTIONS) - used)}"


def test_the_registry_has_the_shipped_clients() -> None:
    assert {"dcmtk", "pynetdicom", "dcmtk-stunnel"} <= set(names())
