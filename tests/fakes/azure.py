"""A fake Azure Resource Manager for ``Microsoft.Insights/metricAlerts``, over HTTPS on 127.0.0.1.

It speaks the wire protocol azure-mgmt-monitor uses (api-version 2018-03-01): ``PUT`` (create or
update, **200** for both: the SDK rejects 201), ``GET`` one rule or the resource group's list,
``DELETE`` (200, or 204 when absent), with ARM's error body ``{"error": {"code", "message"}}``:
401 without the expected bearer token, 400 for a wrong api-version or an invalid rule (missing
properties, a window size or frequency Azure does not allow, dynamic criteria outside the
*Multiple*ResourceMultipleMetricCriteria container, which also needs the target's resource type
and region), 404 for an unknown rule. ``id``, ``type``, ``name`` and ``properties.lastUpdatedTime``
are server-owned, as in Azure. Tests inject faults (429 with ``Retry-After``, 409, 500, 403...)
by method and rule name. azure-core refuses bearer tokens over plain HTTP, so the server uses a
self-signed certificate for 127.0.0.1 made with ``cryptography``, which the client trusts
through ``connection_verify`` (``targets.azure.ca_bundle``).
"""

from __future__ import annotations

import datetime
import itertools
import json
import re
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.fakes import azure_rules

API_VERSION = "2018-03-01"
METRICS_API_VERSION = "2024-02-01"
METRICS_PATH = re.compile(
    r"^(/subscriptions/[^/]+/resourceGroups/[^/]+/providers/.+)/providers/Microsoft\.Insights/metrics$"
)
PATH = re.compile(
    r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Insights/metricAlerts(?:/([^/]+))?$", re.I
)
REQUIRED = ("severity", "enabled", "scopes", "evaluationFrequency", "windowSize", "criteria")
WINDOWS = {"PT1M", "PT5M", "PT15M", "PT30M", "PT1H", "PT6H", "PT12H", "P1D"}
FREQUENCIES = {"PT1M", "PT5M", "PT15M", "PT30M", "PT1H"}
MINUTES = {"PT1M": 1, "PT5M": 5, "PT15M": 15, "PT30M": 30, "PT1H": 60, "PT6H": 360, "PT12H": 720, "P1D": 1440}
SINGLE = "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"
MULTIPLE = "Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria"


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 and localhost, valid for a day; returns (cert, key) paths."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "memprov fake ARM")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "arm-cert.pem", directory / "arm-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@dataclass
class Fault:
    """Answer the next ``times`` requests of ``method`` (for rule ``name``, or any) with an ARM error."""

    method: str
    status: int = 429
    code: str = "TooManyRequests"
    message: str = "The request is being throttled."
    name: str | None = None
    times: int = 1
    retry_after: str | None = "1"
    injected: int = 0


@dataclass
class Seen:
    method: str
    name: str | None  # the rule, or None for the list
    status: int


@dataclass
class FakeArm:
    """The state of the fake: rules by (subscription, resource group, lower-case name), faults, requests seen."""

    token: str = "fake-arm-token"
    rules: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    clock: itertools.count[int] = field(default_factory=itertools.count)
    never_fire: dict[str, list[str]] = field(default_factory=dict)  # rule name -> why it can never fire
    # metric values: (resource id, namespace, metric) -> {series labels: [(unix seconds, value), …]}
    metrics: dict[tuple[str, str, str], dict[tuple[tuple[str, str], ...], list[tuple[float, float]]]] = field(
        default_factory=dict
    )

    def fail(self, method: str, **kw: Any) -> Fault:
        fault = Fault(method, **kw)
        with self.lock:
            self.faults.append(fault)
        return fault

    def fault_for(self, method: str, name: str | None) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if f.injected < f.times and f.method == method and (f.name is None or f.name == name):
                    f.injected += 1
                    return f
        return None

    def requests(self, method: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.method == method]

    def now(self) -> str:
        """A timestamp that changes with every write, as Azure's lastUpdatedTime does."""
        base = datetime.datetime(2026, 11, 30, 12, tzinfo=datetime.UTC)
        return (base + datetime.timedelta(milliseconds=next(self.clock))).isoformat().replace("+00:00", "Z")


def invalid(body: Any) -> str | None:
    """Why ARM would reject this rule, or None."""
    if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
        return "The request body must be a metric alert resource with properties."
    props = body["properties"]
    if body.get("location") != "global":
        return "Metric alerts must be created in location 'global'."
    if missing := [f for f in REQUIRED if f not in props]:
        return f"Missing required properties: {', '.join(missing)}."
    if props["severity"] not in range(5):
        return "Severity must be between 0 and 4."
    if props["windowSize"] not in WINDOWS or props["evaluationFrequency"] not in FREQUENCIES:
        return "Unsupported windowSize or evaluationFrequency."
    if MINUTES[props["evaluationFrequency"]] > MINUTES[props["windowSize"]]:
        return "The evaluation frequency must not be longer than the window size."
    crit = props["criteria"]
    kinds = {c.get("criterionType") for c in crit.get("allOf", [])}
    if crit.get("odata.type") not in (SINGLE, MULTIPLE) or not kinds <= {
        "StaticThresholdCriterion",
        "DynamicThresholdCriterion",
    }:
        return "Unknown criteria type."
    if "DynamicThresholdCriterion" in kinds:
        if crit.get("odata.type") != MULTIPLE:
            return "Dynamic threshold criteria require MultipleResourceMultipleMetricCriteria."
        if not props.get("targetResourceType") or not props.get("targetResourceRegion"):
            return "targetResourceType and targetResourceRegion are required for multiple resource criteria."
    if why := azure_rules.refusals(body):  # metric, aggregation, operator and dynamic-threshold rules
        return " ".join(why)
    return None


def handler(fake: FakeArm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as ARM: azure-core reuses pooled connections

        def log_message(self, *args: object) -> None:
            pass

        def send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-ms-request-id", "00000000-memprov-fake")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
            self.send(status, {"error": {"code": code, "message": message}}, headers)

        def handle_one(self, method: str) -> None:
            url = urlparse(self.path)
            match = PATH.match(url.path)
            name = match[3] if match else None
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = self.answer(method, url.query, match, name, body)
            with fake.lock:
                fake.seen.append(Seen(method, name, status))

        def answer(self, method: str, query: str, match: re.Match[str] | None, name: str | None, raw: bytes) -> int:
            if self.headers.get("Authorization") != f"Bearer {fake.token}":
                self.error(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is invalid.")
                return 401
            metrics = METRICS_PATH.match(urlparse(self.path).path)
            if metrics is not None and method == "GET":
                return self.metrics(metrics[1], parse_qs(query))
            if parse_qs(query).get("api-version") != [API_VERSION]:
                self.error(400, "InvalidApiVersionParameter", f"The api-version is not supported; use {API_VERSION}.")
                return 400
            if match is None or (method != "GET" and name is None):
                self.error(404, "InvalidResourceType", "The resource type could not be found.")
                return 404
            if fault := fake.fault_for(method, name):
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
                self.error(fault.status, fault.code, fault.message, headers)
                return fault.status
            sub, rg = match[1].lower(), match[2].lower()
            if method == "GET" and name is None:
                with fake.lock:
                    found = [v for k, v in sorted(fake.rules.items()) if k[:2] == (sub, rg)]
                self.send(200, {"value": found})
                return 200
            assert name is not None
            key = (sub, rg, name.lower())
            if method == "GET":
                with fake.lock:
                    rule = fake.rules.get(key)
                if rule is None:
                    why = f"The Resource 'Microsoft.Insights/metricAlerts/{name}' was not found."
                    self.error(404, "ResourceNotFound", why)
                    return 404
                self.send(200, rule)
                return 200
            if method == "DELETE":
                with fake.lock:
                    gone = fake.rules.pop(key, None)
                self.send(200 if gone else 204)
                return 200 if gone else 204
            try:
                body = json.loads(raw)
            except json.JSONDecodeError:
                self.error(
                    400, "InvalidRequestContent", "The request content was invalid and could not be deserialized."
                )
                return 400
            if why := invalid(body):
                self.error(400, "BadRequest", why)
                return 400
            with fake.lock:
                if never := azure_rules.never_fires(body):
                    fake.never_fire[name] = never
                rule = {
                    "id": f"/subscriptions/{match[1]}/resourceGroups/{match[2]}/providers/Microsoft.Insights/metricAlerts/{name}",  # noqa: E501
                    "name": name,
                    "type": "Microsoft.Insights/metricAlerts",
                    "location": "global",
                    "tags": body.get("tags") or {},  # PUT replaces the tags
                    "properties": {**body["properties"], "lastUpdatedTime": fake.now(), "isMigrated": False},
                }
                fake.rules[key] = rule
            self.send(200, rule)  # 200 for create AND update: azure-mgmt-monitor rejects 201
            return 200

        def metrics(self, resource: str, q: dict[str, list[str]]) -> int:
            """``GET {resource}/providers/Microsoft.Insights/metrics``: values per interval, aggregated as asked."""
            if q.get("api-version") != [METRICS_API_VERSION]:
                self.error(400, "InvalidApiVersionParameter", f"use api-version {METRICS_API_VERSION}")
                return 400
            (metric,), (namespace,), (aggregation,) = q["metricnames"], q["metricnamespace"], q["aggregation"]
            start, end = (
                datetime.datetime.fromisoformat(x.replace("Z", "+00:00")).timestamp()
                for x in q["timespan"][0].split("/")
            )
            step = {"PT1M": 60, "PT5M": 300, "PT15M": 900, "PT1H": 3600}[q["interval"][0]]
            if aggregation not in ("Maximum", "Minimum"):
                self.error(400, "BadRequest", f"aggregation {aggregation} is not served by this fake")
                return 400
            pick = max if aggregation == "Maximum" else min
            with fake.lock:
                found = fake.metrics.get((resource.lower(), namespace, metric))
            if found is None:
                self.error(
                    400,
                    "BadRequest",
                    f"Failed to find metric configuration for provider: {namespace}, metric: {metric}",
                )
                return 400
            series = []
            for labels, points in sorted(found.items()):
                buckets: dict[float, list[float]] = {}
                for t, v in points:
                    if start <= t < end:
                        buckets.setdefault(t - (t - start) % step, []).append(v)
                data = [
                    {
                        "timeStamp": datetime.datetime.fromtimestamp(b, datetime.UTC)
                        .isoformat()
                        .replace("+00:00", "Z"),
                        aggregation.lower(): pick(vs),
                    }
                    for b, vs in sorted(buckets.items())
                ]
                meta = [{"name": {"value": k, "localizedValue": k}, "value": v} for k, v in labels]
                series.append({"metadatavalues": meta, "data": data})
            self.send(
                200,
                {
                    "cost": 0,
                    "timespan": q["timespan"][0],
                    "interval": q["interval"][0],
                    "namespace": namespace,
                    "resourceregion": "westeurope",
                    "value": [
                        {
                            "id": f"{resource}/providers/Microsoft.Insights/metrics/{metric}",
                            "type": "Microsoft.Insights/metrics",
                            "name": {"value": metric, "localizedValue": metric},
                            "unit": "Percent",
                            "timeseries": series,
                            "errorCode": "Success",
                        }
                    ],
                },
            )
            return 200

        def do_GET(self) -> None:
            self.handle_one("GET")

        def do_PUT(self) -> None:
            self.handle_one("PUT")

        def do_DELETE(self) -> None:
            self.handle_one("DELETE")

    return Handler


class ArmServer:
    """The fake on an ephemeral HTTPS port of 127.0.0.1: ``url``, ``cert`` (to trust) and ``fake`` (its state)."""

    def __init__(self, directory: Path, fake: FakeArm | None = None) -> None:
        self.fake = fake or FakeArm()
        self.cert, key = self_signed(directory)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler(self.fake))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
