"""A local gRPC server speaking ``google.monitoring.v3.AlertPolicyService``, for the real client.

Google has no Cloud Monitoring emulator, so tests run :class:`FakeAlertPolicies` on 127.0.0.1
(plaintext), built from the client package's own protobuf classes so that the wire format is
the real one. It keeps the API's semantics that memprov relies on: every call needs
``authorization: Bearer <token>`` (else ``UNAUTHENTICATED``); the server assigns ``name``
(``projects/P/alertPolicies/ID``), the conditions' names, ``creation_record`` and
``mutation_record``; ``NOT_FOUND`` for unknown names; ``INVALID_ARGUMENT`` for a policy without a
display name or conditions, a forecast horizon outside 1h..60h, bad user labels, an update mask
naming an unknown field, and a list filter it cannot parse (it understands only
``user_labels."KEY" = "VALUE"`` and ``display_name = "NAME"`` joined by ``AND``); pages of at most
``page_size``; and everything :func:`tests.fakes.gcp_rules.refusals` refuses (aligners the metric's kind
does not allow, forecast horizons, PromQL that does not parse); policies it accepts but that can
never fire are recorded in ``never_fire`` (:func:`tests.fakes.gcp_rules.never_fires`).
Failures are injected per method (optionally for one display name or name):
``UNAVAILABLE``, ``RESOURCE_EXHAUSTED``, ``PERMISSION_DENIED``... Every call is recorded.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.cloud.monitoring_v3.types import alert as alert_t
from google.cloud.monitoring_v3.types import alert_service as svc_t
from google.cloud.monitoring_v3.types import common as common_t
from google.cloud.monitoring_v3.types import metric as metric_t
from google.cloud.monitoring_v3.types import metric_service as msvc_t
from google.protobuf import empty_pb2
from google.protobuf.json_format import MessageToDict

from tests.fakes import gcp_rules

SERVICE = "google.monitoring.v3.AlertPolicyService"
AP = alert_t.AlertPolicy.pb()
REQ = {n: getattr(svc_t, n + "AlertPolicyRequest").pb() for n in ("Create", "Get", "Update", "Delete")}
LIST_REQ, LIST_RESP = svc_t.ListAlertPoliciesRequest.pb(), svc_t.ListAlertPoliciesResponse.pb()
METRIC_SERVICE = "google.monitoring.v3.MetricService"
TS_REQ, TS_RESP = msvc_t.ListTimeSeriesRequest.pb(), msvc_t.ListTimeSeriesResponse.pb()
LABEL = re.compile(r"^[a-z0-9_-]{1,63}$")
CLAUSE = re.compile(r'^\s*(user_labels\.(?:"([^"]+)"|([a-z0-9_-]+))|display_name)\s*=\s*"([^"]*)"\s*$')


@dataclass
class Fault:
    """Fail the next ``times`` calls of ``method`` (for one display name or name, if given) with ``code``."""

    method: str
    code: grpc.StatusCode
    times: int
    target: str | None = None
    message: str = "injected"
    injected: int = 0


@dataclass
class Call:
    method: str
    target: str  # display name or resource name the call was about ("" for List)


@dataclass
class FakeAlertPolicies:
    token: str = "test-token"
    db: dict[str, Any] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # time series by their filter (exactly as the client sends it): one list of (unix seconds, value) per series
    series: dict[str, list[list[tuple[float, float]]]] = field(default_factory=dict)
    never_fire: dict[str, list[str]] = field(default_factory=dict)  # display name -> why it can never fire

    def list_time_series(self, req: Any, ctx: grpc.ServicerContext) -> Any:
        """``MetricService.ListTimeSeries`` with ALIGN_MAX per alignment period and REDUCE_MAX across series,
        newest point first, as the API returns them; an unknown filter has no data."""
        self._pre(ctx, "ListTimeSeries", req.filter)
        agg = req.aggregation
        if agg.per_series_aligner != common_t.Aggregation.Aligner.ALIGN_MAX or (
            agg.cross_series_reducer != common_t.Aggregation.Reducer.REDUCE_MAX
        ):
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "this fake serves ALIGN_MAX with REDUCE_MAX only")
        period = agg.alignment_period.seconds or 60
        start, end = req.interval.start_time.seconds, req.interval.end_time.seconds
        buckets: dict[int, float] = {}
        with self.lock:
            found = self.series.get(req.filter, [])
        for points in found:
            for t, v in points:
                if start <= t < end:
                    b = int(start + (t - start) // period * period + period)  # the period's end
                    buckets[b] = max(buckets.get(b, v), v)
        ts = metric_t.TimeSeries.pb()()
        for b in sorted(buckets, reverse=True):
            point = ts.points.add()
            point.interval.end_time.seconds = b
            point.interval.start_time.seconds = b - period
            point.value.double_value = buckets[b]
        response = TS_RESP()
        if buckets:
            response.time_series.append(ts)
        return response

    def fail(
        self, method: str, code: grpc.StatusCode, times: int = 1, target: str | None = None, message: str = "injected"
    ) -> Fault:
        fault = Fault(method, code, times, target, message)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()
            self.calls.clear()

    def count(self, method: str) -> int:
        return sum(1 for c in self.calls if c.method == method)

    # --- plumbing ---------------------------------------------------------------------------------
    def _pre(self, ctx: grpc.ServicerContext, method: str, target: str = "") -> None:
        if dict(ctx.invocation_metadata()).get("authorization") != f"Bearer {self.token}":
            ctx.abort(grpc.StatusCode.UNAUTHENTICATED, "Request had invalid authentication credentials.")
        with self.lock:
            self.calls.append(Call(method, target))
            fault = next(
                (f for f in self.faults if f.method == method and f.times > 0 and f.target in (None, target)), None
            )
            if fault is not None:
                fault.times -= 1
                fault.injected += 1
        if fault is not None:
            ctx.abort(fault.code, fault.message)

    def _existing(self, ctx: grpc.ServicerContext, name: str) -> Any:
        with self.lock:
            found = self.db.get(name)
        if found is None:
            ctx.abort(grpc.StatusCode.NOT_FOUND, f"Requested entity was not found: {name}")
        return found

    def _validate(self, ctx: grpc.ServicerContext, p: Any) -> None:
        problems = []
        if not p.display_name:
            problems.append("display_name is required")
        if not p.conditions:
            problems.append("at least one condition is required")
        for k, v in p.user_labels.items():
            if not LABEL.match(k) or (v and not LABEL.match(v)):
                problems.append(f"invalid user label {k}={v}")
        for c in p.conditions:
            kind = c.WhichOneof("condition")
            if kind is None:
                problems.append("a condition needs a condition type")
            elif kind == "condition_threshold":
                if not c.condition_threshold.filter:
                    problems.append("condition_threshold.filter is required")
                if c.condition_threshold.HasField("forecast_options"):
                    horizon = c.condition_threshold.forecast_options.forecast_horizon.seconds
                    if not 3600 <= horizon <= 216000:
                        problems.append("forecast_horizon must be between 1h and 60h")
            elif kind == "condition_prometheus_query_language" and not c.condition_prometheus_query_language.query:
                problems.append("query is required")
        as_json = MessageToDict(p)
        problems += gcp_rules.refusals(as_json)
        if problems:
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "; ".join(problems))
        if never := gcp_rules.never_fires(as_json):
            with self.lock:
                self.never_fire[p.display_name] = never

    def _stamp(self, p: Any, created: bool) -> None:
        now = time.time_ns()
        who = "memprov-test@example.iam.gserviceaccount.com"
        if created:
            p.creation_record.mutate_time.FromNanoseconds(now)
            p.creation_record.mutated_by = who
        p.mutation_record.mutate_time.FromNanoseconds(now)
        p.mutation_record.mutated_by = who
        for i, c in enumerate(p.conditions):
            if not c.name:
                c.name = f"{p.name}/conditions/{uuid.uuid4().hex[:20]}{i}"

    # --- the service --------------------------------------------------------------------------------
    def create(self, req: Any, ctx: grpc.ServicerContext) -> Any:
        self._pre(ctx, "CreateAlertPolicy", req.alert_policy.display_name)
        if not re.match(r"^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]$", req.name):
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid parent {req.name}")
        p = AP()
        p.CopyFrom(req.alert_policy)
        self._validate(ctx, p)
        p.name = f"{req.name}/alertPolicies/{uuid.uuid4().int % 10**19}"
        p.ClearField("creation_record")
        for c in p.conditions:
            c.name = ""
        self._stamp(p, created=True)
        with self.lock:
            self.db[p.name] = p
        return p

    def get(self, req: Any, ctx: grpc.ServicerContext) -> Any:
        self._pre(ctx, "GetAlertPolicy", req.name)
        return self._existing(ctx, req.name)

    def _filter(self, ctx: grpc.ServicerContext, text: str) -> list[tuple[str | None, str]]:
        out: list[tuple[str | None, str]] = []
        for clause in re.split(r"\s+AND\s+", text.strip()) if text.strip() else []:
            m = CLAUSE.match(clause)
            if m is None:
                ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Unparseable filter: {text}")
            out.append((m.group(2) or m.group(3), m.group(4)))
        return out

    def list(self, req: Any, ctx: grpc.ServicerContext) -> Any:
        self._pre(ctx, "ListAlertPolicies")
        clauses = self._filter(ctx, req.filter)
        with self.lock:
            items = sorted((p for n, p in self.db.items() if n.startswith(req.name + "/")), key=lambda p: p.name)
        for key, value in clauses:
            items = [p for p in items if (p.user_labels.get(key) if key else p.display_name) == value]
        try:
            start = int(req.page_token or 0)
        except ValueError:
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "invalid page_token")
        size = min(req.page_size or 100, 1000)
        resp = LIST_RESP(alert_policies=items[start : start + size], total_size=len(items))
        if start + size < len(items):
            resp.next_page_token = str(start + size)
        return resp

    def update(self, req: Any, ctx: grpc.ServicerContext) -> Any:
        self._pre(ctx, "UpdateAlertPolicy", req.alert_policy.display_name or req.alert_policy.name)
        current = self._existing(ctx, req.alert_policy.name)
        merged = AP()
        merged.CopyFrom(current)
        if req.update_mask.paths:
            unknown = [p for p in req.update_mask.paths if p.split(".")[0] not in AP.DESCRIPTOR.fields_by_name]
            if unknown:
                ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid update_mask paths: {unknown}")
            req.update_mask.MergeMessage(
                req.alert_policy, merged, replace_message_field=True, replace_repeated_field=True
            )
        else:
            merged.CopyFrom(req.alert_policy)
            merged.creation_record.CopyFrom(current.creation_record)
        self._validate(ctx, merged)
        for c in merged.conditions:  # conditions sent without a name are new conditions
            if c.name and not c.name.startswith(merged.name + "/conditions/"):
                ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, f"condition {c.name} is not of this policy")
        self._stamp(merged, created=False)
        with self.lock:
            self.db[merged.name] = merged
        return merged

    def delete(self, req: Any, ctx: grpc.ServicerContext) -> Any:
        self._pre(ctx, "DeleteAlertPolicy", req.name)
        self._existing(ctx, req.name)
        with self.lock:
            self.db.pop(req.name, None)
        return empty_pb2.Empty()

    # --- direct access for tests --------------------------------------------------------------------
    def policies(self) -> dict[str, Any]:
        """Display name -> stored protobuf (the last one by name when display names repeat)."""
        with self.lock:
            return {p.display_name: p for _, p in sorted(self.db.items())}

    def put(self, project: str, policy: Any) -> Any:
        """Store ``policy`` as if someone else had created it (no auth, no faults)."""
        p = AP()
        p.CopyFrom(policy)
        p.name = f"projects/{project}/alertPolicies/{uuid.uuid4().int % 10**19}"
        self._stamp(p, created=True)
        with self.lock:
            self.db[p.name] = p
        return p

    def reset(self) -> None:
        with self.lock:
            self.never_fire.clear()
            self.db.clear()
            self.faults.clear()
            self.calls.clear()


@contextmanager
def serve(fake: FakeAlertPolicies) -> Iterator[str]:
    """Run ``fake`` on 127.0.0.1 (plaintext gRPC); yields ``host:port``."""

    def unary(fn: Any, request: Any, response: Any) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=request.FromString, response_serializer=response.SerializeToString
        )

    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "CreateAlertPolicy": unary(fake.create, REQ["Create"], AP),
            "GetAlertPolicy": unary(fake.get, REQ["Get"], AP),
            "ListAlertPolicies": unary(fake.list, LIST_REQ, LIST_RESP),
            "UpdateAlertPolicy": unary(fake.update, REQ["Update"], AP),
            "DeleteAlertPolicy": unary(fake.delete, REQ["Delete"], empty_pb2.Empty),
        },
    )
    metrics = grpc.method_handlers_generic_handler(
        METRIC_SERVICE, {"ListTimeSeries": unary(fake.list_time_series, TS_REQ, TS_RESP)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((handler, metrics))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(0)
