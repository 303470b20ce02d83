"""Proven fixes: each failing cell's fix as typed candidates, tried on a copy of the environment's config (or with
the client changed), re-run with the matrix's own runner, and handed back as a patch when it made the cell pass.

``candidates`` says what could fix a reason and what it costs; ``envoy_bootstrap``, ``traefik``, ``istio`` and
``options`` apply a candidate's edits to one kind of source (the user's Envoy bootstrap, Traefik manifests or Istio
Gateway, a scenario's component options); ``roundtrip`` edits YAML keeping its formatting and comments; ``patch``
writes the unified diff; ``prove`` runs the variants and compares them with the run they came from.
"""
