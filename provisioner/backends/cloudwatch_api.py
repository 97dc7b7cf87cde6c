"""The live ``cloudwatch`` target: metric alarms in an AWS account, through boto3 (imported lazily).

Reads page through ``DescribeAlarms`` with the name prefix ``memprov-<env>-`` (at most 100 per
page) and fetches each alarm's tags; an alarm is memprov's when its tags say so for this
environment and spec (``managed-by``, ``memprov-env``, ``memprov-spec``), and a look-alike
without them is returned only when the spec wants its name, so that the plan shows a conflict.
Create refuses to overwrite an alarm that appeared since the plan (``PutMetricAlarm`` is an
upsert); update and delete re-read the alarm and refuse when it is no longer memprov's or was
changed since the plan, unless ``apply --force``. CloudWatch ignores ``Tags`` on an update, so
an update re-tags with ``TagResource`` (and drops stale memprov tags). Deletes made at the same
time are coalesced into ``DeleteAlarms`` calls of at most 100 names.

Errors: throttling (``Throttling``...), 5xx and connection failures are
:class:`~provisioner.core.errors.RetryableError` for the apply engine's backoff (botocore's own
retries are off, so that one policy governs); anything else is an
:class:`~provisioner.core.errors.OperationError` saying what to check.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from provisioner.backends.cloud import GuardedTarget
from provisioner.core.errors import OperationError, RetryableError
from provisioner.plan.contract import Backend, Target, TargetConfig
from provisioner.plan.model import Resource
from provisioner.spec.environment import AWS_REGION_PATTERN, SNS_ARN_PATTERN

T = TypeVar("T")
PAGE_SIZE = 100  # DescribeAlarms MaxRecords
DELETE_BATCH = 100  # DeleteAlarms AlarmNames
TAG_READERS = 8
POOL = 32  # connections: apply's concurrency (8 by default) plus the tag readers, with room
THROTTLING = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
}
TRANSIENT = {
    "InternalFailure",
    "InternalServiceError",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeoutException",
}
CREDENTIALS = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "AuthFailure",
    "IncompleteSignature",
}
DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}


class Sns(BaseModel):
    """SNS topic ARN per severity; alarms of a severity without a topic notify nobody (the plan says so)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    info: str | None = Field(default=None, pattern=SNS_ARN_PATTERN)
    warning: str | None = Field(default=None, pattern=SNS_ARN_PATTERN)
    critical: str | None = Field(default=None, pattern=SNS_ARN_PATTERN)


class CloudWatchConfig(TargetConfig):
    """``targets.cloudwatch: {type: cloudwatch, region, sns, endpoint_url}``; credentials: the standard AWS chain."""

    type: Literal["cloudwatch"]
    region: str = Field(pattern=AWS_REGION_PATTERN, description="e.g. eu-west-1")
    endpoint_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$", description="e.g. a VPC endpoint")
    profile: str | None = Field(default=None, min_length=1, description="AWS profile; default: the standard chain")
    sns: Sns = Sns()
    notify_ok: bool = Field(default=True, description="also notify the topic when the alarm returns to OK")
    timeout: float = Field(default=10.0, gt=0, le=300, description="seconds per request")


@dataclass(frozen=True)
class Live:
    """What the plan read about a live alarm, to detect changes made since."""

    arn: str
    updated: str  # AlarmConfigurationUpdatedTimestamp


def error(where: str, exc: Exception) -> OperationError:
    """A botocore exception as memprov's error: retryable or not, with what to do."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        HTTPClientError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )
    from botocore.exceptions import ConnectionError as BotoConnectionError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code, message = str(err.get("Code", "")), str(err.get("Message", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        text = f"{where}: {code or status}" + (f" ({message})" if message else "")
        if code in THROTTLING or code in TRANSIENT or status == 429 or status >= 500:
            return RetryableError(text)
        if code in CREDENTIALS:
            return OperationError(f"{text}; AWS rejected the credentials: check AWS_PROFILE or the access keys")
        if code in DENIED:
            return OperationError(
                f"{text}; allow cloudwatch:DescribeAlarms, PutMetricAlarm, DeleteAlarms, ListTagsForResource, "
                "TagResource and UntagResource to the role memprov runs as"
            )
        return OperationError(text)
    if isinstance(exc, HTTPClientError | EndpointConnectionError | BotoConnectionError):  # timeouts, closed
        return RetryableError(f"{where}: cannot reach CloudWatch ({type(exc).__name__}: {exc})")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return OperationError(
            f"{where}: no AWS credentials found; set AWS_PROFILE (or the targets.cloudwatch profile), "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run where an instance or task role is available"
        )
    if isinstance(exc, NoRegionError):
        return OperationError(f"{where}: no AWS region; set targets.cloudwatch.region")
    return OperationError(f"{where}: {type(exc).__name__}: {exc}")


class DeleteBatcher:
    """Coalesces deletes requested concurrently into calls of at most ``DELETE_BATCH`` names.

    The first caller waits ``linger`` seconds for others, then sends batches until none are
    pending; every caller gets the outcome of the call its name was in (so a failed batch fails,
    and is retried, for each of its alarms).
    """

    def __init__(self, send: Callable[[list[str]], None], linger: float = 0.05) -> None:
        self.send, self.linger = send, linger
        self._lock = threading.Lock()
        self._pending: list[tuple[str, Future[None]]] = []
        self._sending = False

    def delete(self, name: str) -> None:
        done: Future[None] = Future()
        with self._lock:
            self._pending.append((name, done))
            lead = not self._sending
            self._sending = True
        if lead:
            time.sleep(self.linger)
            while True:
                with self._lock:
                    batch, self._pending = self._pending[:DELETE_BATCH], self._pending[DELETE_BATCH:]
                    if not batch:
                        self._sending = False
                        break
                try:
                    self.send([n for n, _ in batch])
                except BaseException as e:
                    for _, f in batch:
                        f.set_exception(e)
                else:
                    for _, f in batch:
                        f.set_result(None)
        done.result()


class CloudWatchTarget(GuardedTarget, Target):
    """Metric alarms in one AWS account and region."""

    NOUN: ClassVar[str] = "alarm"
    SERVICE: ClassVar[str] = "CloudWatch"
    MARKER: ClassVar[str] = "tags"

    type: ClassVar[str] = "cloudwatch"

    def __init__(self, owner: Backend, config: CloudWatchConfig) -> None:
        self.owner, self.spec, self.config = owner, owner.spec, config
        self.prefix = f"memprov-{owner.spec.env}-"
        self._client: Any = None
        self._lock = threading.Lock()
        self.deletes = DeleteBatcher(self._delete_batch)

    def describe(self) -> str:
        where = f" via {self.config.endpoint_url}" if self.config.endpoint_url else ""
        return f"cloudwatch {self.config.region}{where} (alarms {self.prefix}*)"

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                try:
                    session = boto3.session.Session(profile_name=self.config.profile, region_name=self.config.region)
                except Exception as e:  # ProfileNotFound and friends
                    raise error("CloudWatch", e) from e
                self._client = session.client(
                    "cloudwatch",
                    endpoint_url=self.config.endpoint_url,
                    config=Config(
                        retries={
                            "total_max_attempts": 1,
                            "mode": "standard",
                        },  # no botocore retries: the engine retries
                        connect_timeout=self.config.timeout,
                        read_timeout=self.config.timeout,
                        user_agent_extra="memprov",
                        max_pool_connections=POOL,
                    ),
                )
            return self._client

    def call(self, what: str, fn: Callable[[], T]) -> T:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn()
        except (ClientError, BotoCoreError) as e:
            raise error(f"CloudWatch {self.config.region}: {what}", e) from e

    # --- reading -------------------------------------------------------------------------------
    def _pages(self, **kw: Any) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("describe_alarms")
        pages = paginator.paginate(AlarmTypes=["MetricAlarm"], PaginationConfig={"PageSize": PAGE_SIZE}, **kw)
        for page in pages:
            yield from page.get("MetricAlarms", [])

    def describe_alarms(self, **kw: Any) -> list[dict[str, Any]]:
        return self.call("DescribeAlarms", lambda: list(self._pages(**kw)))

    def tags(self, arn: str) -> list[dict[str, str]]:
        found = self.call(f"ListTagsForResource {arn}", lambda: self.client.list_tags_for_resource(ResourceARN=arn))
        return list(found.get("Tags", []))

    def _resource(self, alarm: dict[str, Any], tags: list[dict[str, str]]) -> Resource:
        body = {**alarm, "Tags": tags}
        tag = {t.get("Key"): t.get("Value") for t in tags}
        return Resource(
            "alarm",
            str(alarm["AlarmName"]),
            body,
            owned=self.owner.owns(body),
            job=tag.get("memprov-job"),
            title=str(tag.get("memprov-job") or ""),
            handle=Live(str(alarm.get("AlarmArn", "")), str(alarm.get("AlarmConfigurationUpdatedTimestamp", ""))),
        )

    def read_live(self, desired: Sequence[Resource]) -> list[Resource]:
        alarms = self.describe_alarms(AlarmNamePrefix=self.prefix)
        wanted = {r.key for r in desired}
        with ThreadPoolExecutor(max_workers=TAG_READERS) as pool:
            tags = list(pool.map(lambda a: self.tags(str(a["AlarmArn"])), alarms))
        out = [self._resource(a, t) for a, t in zip(alarms, tags, strict=True)]
        return sorted((r for r in out if r.owned or r.key in wanted), key=lambda r: r.key)

    def current(self, name: str) -> Resource | None:
        """The alarm as it is now (with its tags), or None."""
        found = self.describe_alarms(AlarmNames=[name])
        alarm = next((a for a in found if a.get("AlarmName") == name), None)
        return None if alarm is None else self._resource(alarm, self.tags(str(alarm["AlarmArn"])))

    # --- writing -------------------------------------------------------------------------------
    def _put(self, desired: Resource) -> None:
        self.call(f"PutMetricAlarm {desired.key}", lambda: self.client.put_metric_alarm(**desired.body))

    def create(self, desired: Resource, *, force: bool = False) -> None:
        now = self.current(desired.key)
        if now is not None and not now.owned:  # ours already (a retried put that had succeeded): just put
            raise OperationError(
                f"alarm {desired.key} appeared in CloudWatch after the plan, not managed by memprov; nothing was "
                "written. Run memprov plan again to review it."
            )
        self._put(desired)

    def version(self, resource: Resource) -> str | None:
        return resource.handle.updated if isinstance(resource.handle, Live) else None

    def update(self, desired: Resource, live: Resource, *, force: bool = False) -> None:
        self.check_takeover(live, force)
        now = self.current(desired.key)
        self.check_unchanged(now, live, "updated", force)
        assert now is not None and isinstance(now.handle, Live)
        self._put(desired)  # CloudWatch ignores Tags on an update: re-tag
        arn, want = now.handle.arn, list(desired.body.get("Tags", []))
        stale = sorted({t["Key"] for t in now.body["Tags"]} - {t["Key"] for t in want})
        stale = [k for k in stale if k == "managed-by" or k.startswith("memprov-")]
        if want:
            self.call(f"TagResource {desired.key}", lambda: self.client.tag_resource(ResourceARN=arn, Tags=want))
        if stale:
            self.call(
                f"UntagResource {desired.key}", lambda: self.client.untag_resource(ResourceARN=arn, TagKeys=stale)
            )

    def delete(self, live: Resource, *, force: bool = False) -> None:
        if not self.check_deletable(self.current(live.key), live, force):
            return
        self.deletes.delete(live.key)

    def _delete_batch(self, names: list[str]) -> None:
        more = f" and {len(names) - 1} more" if len(names) > 1 else ""
        self.call(f"DeleteAlarms {names[0]}{more}", lambda: self.client.delete_alarms(AlarmNames=names))
