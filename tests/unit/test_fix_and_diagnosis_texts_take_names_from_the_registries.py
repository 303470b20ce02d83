"""The texts of diagnoses and fix candidates name a client or a proxy only in that client's or proxy's own
declared words (``ClientKind.advice``, a component's ``catch_all_route`` and the like), so a new client or proxy
is named where it has something to say, and one that goes is named nowhere."""

from __future__ import annotations

from dicomtls import clients, components

from .registered_names import prose_mentions, word_pattern

TEXTS = ("diagnose.py", "profiles.py", "reasons.py", "corroborate.py", "fixes/")
"""The modules that word a failure's summary, its fix and the fix candidates."""
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("fixes/envoy_bootstrap.py", "envoy"):
        "the editor of the user's Envoy bootstrap files says what it found in them: the file format's name",
    ("fixes/traefik.py", "traefik"):
        "the editor of the user's Traefik manifests says what it found in them: the file format's name",
    ("fixes/haproxy.py", "haproxy"):
        "the editor of the user's haproxy.cfg says what it found in it: the file format's name",
    ("fixes/sidecar.py", "stunnel"):
        "it writes the sidecar's own configuration file, whose paths are stunnel's",
}
"""(module, name in lower case) -> why its texts may write it."""


def registered_words() -> set[str]:
    """Every client's and component's name and display name, and the sidecars' programs."""
    return ({*clients.names(), *clients.display_names().values()}
            | {c.sidecar_program for c in clients.listed() if c.sidecar_program}
            | {word for c in components.listed() for word in (c.kind, c.display_name)})


def mentions() -> list[tuple[str, int, str]]:
    return prose_mentions(registered_words(), TEXTS)


def test_fix_and_diagnosis_texts_name_no_client_or_proxy_by_writing_it() -> None:
    named = [f"{module}:{line}: {name!r}" for module, line, name in mentions()
             if (module, name.lower()) not in EXCEPTIONS]
    assert not named, ("these texts write a client's or proxy's name: declare the words on the client "
                       "(ClientKind.advice) or the component and look them up:\n" + "\n".join(named))


def test_every_exception_is_still_needed() -> None:
    used = {(module, name.lower()) for module, _, name in mentions()}
    assert set(EXCEPTIONS) <= used, f"no longer needed, remove them: {sorted(set(EXCEPTIONS) - used)}"


def test_the_scanner_finds_names_inside_prose_but_not_inside_a_longer_name() -> None:
    find = word_pattern(registered_words()).findall
    # The words the catch-all fix was written in before the registries gave them.
    assert find("send SNI with a configured name (dcmtk >= 3.6.8: --request-sni NAME), or give the proxy a catch-all "
                "route (Istio hosts: \"*\", Traefik HostSNI(`*`), an Envoy default filter chain)") == \
        ["dcmtk", "Traefik", "Envoy"]
    assert find("run the client dcmtk-stunnel") == ["dcmtk-stunnel"]
