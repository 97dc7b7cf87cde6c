"""The live ``cloudwatch`` target: metric alarms in an AWS account, through boto3 (imported lazily).

Reads page through ``DescribeAlarms`` with the name prefix ``memprov-<env>-`` (at most 100 per
page, each page its own request) and fetch each alarm's tags (``ListTagsForResource``, one alarm
per request: CloudWatch has no batch for tags); an alarm is memprov's when its tags say so for this
environment and spec (``managed-by``, ``memprov-env``, ``memprov-spec``), and a look-alike without
them is returned only when the spec wants its name, so that the plan shows a conflict. Create
refuses to overwrite an alarm that appeared since the plan (``PutMetricAlarm`` is an upsert);
update and delete re-read the alarm (the re-reads of changes running at the same time are one
``DescribeAlarms`` of up to 100 names) and refuse when it is no longer memprov's or was changed
since the plan, unless ``apply --force`` or it already is as desired (memprov's own earlier
attempt). CloudWatch ignores ``Tags`` on an update, so an update re-tags with ``TagResource`` (and
drops stale memprov tags). Deletes made at the same time are coalesced into ``DeleteAlarms`` calls
of at most 100 names.

Errors and retries: every request is retried on its own with the AWS standard retry mode's rules
(:class:`~provisioner.plan.retry.AwsStandard`: throttling codes, 5xx, timeouts and connection
failures; full-jitter back-off, ``x-amz-retry-after``, the retry quota); botocore's own retries are
off so that one policy governs, while ``retry_mode: adaptive`` keeps botocore's client-side rate
limiter (the AWS adaptive mode), which slows the sending rate after throttling. A write that still
fails is read back before it is reported. Anything else is an
:class:`~provisioner.core.errors.OperationError` saying what to check.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from provisioner.backends.batching import Batcher
from provisioner.backends.cloud import GuardedTarget
from provisioner.core.errors import OperationError
from provisioner.plan import retry
from provisioner.plan.contract import Backend, Target, TargetConfig
from provisioner.plan.model import Resource, canonical
from provisioner.spec.environment import AWS_REGION_PATTERN, SNS_ARN_PATTERN

T = TypeVar("T")
PAGE_SIZE = 100  # DescribeAlarms MaxRecords
BATCH = 100  # DescribeAlarms and DeleteAlarms AlarmNames
TAG_READERS = 8
POOL = 32  # connections: apply's concurrency (8 by default) plus the tag readers, with room
THROTTLING = {  # botocore/retries/standard.py ThrottledRetryableChecker
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
}
TRANSIENT = {"RequestTimeout", "RequestTimeoutException", "InternalFailure", "InternalServiceError"}
NOT_DONE = {"ServiceUnavailable"}  # 503: refused before it was carried out
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
    retry_mode: Literal["standard", "adaptive"] = Field(
        default="standard", description="AWS retry mode: adaptive also slows the sending rate after throttling"
    )


@dataclass(frozen=True)
class Live:
    """What the plan read about a live alarm, to detect changes made since."""

    arn: str
    updated: str  # AlarmConfigurationUpdatedTimestamp


def error(where: str, exc: Exception) -> OperationError:
    """A botocore exception as memprov's error: transient (retried, see :mod:`provisioner.plan.retry`)
    or not, with what to do."""
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        HTTPClientError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ReadTimeoutError,
    )
    from botocore.exceptions import ConnectionError as BotoConnectionError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code, message = str(err.get("Code", "")), str(err.get("Message", ""))
        meta = exc.response.get("ResponseMetadata", {})
        status = int(meta.get("HTTPStatusCode") or 0)
        text = f"{where}: {code or status}" + (f" ({message})" if message else "")
        throttled = code in THROTTLING or status == 429
        if throttled or code in TRANSIENT or code in NOT_DONE or status >= 500:
            after = (meta.get("HTTPHeaders") or {}).get("x-amz-retry-after")
            wait = int(after) / 1000.0 if after and after.isdigit() else None
            unsure = not throttled and code not in NOT_DONE and status != 503
            return retry.Transient(text, wait, throttled=throttled, unsure=unsure)
        if code in CREDENTIALS:
            return OperationError(f"{text}; AWS rejected the credentials: check AWS_PROFILE or the access keys")
        if code in DENIED:
            return OperationError(
                f"{text}; allow cloudwatch:DescribeAlarms, PutMetricAlarm, DeleteAlarms, ListTagsForResource, "
                "TagResource and UntagResource to the role memprov runs as"
            )
        return OperationError(text)
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):  # nothing was sent
        return retry.Transient(f"{where}: cannot reach CloudWatch ({type(exc).__name__}: {exc})", unsure=False)
    if isinstance(exc, HTTPClientError | BotoConnectionError | ReadTimeoutError):  # reset, closed, no answer
        return retry.Transient(f"{where}: cannot reach CloudWatch ({type(exc).__name__}: {exc})")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return OperationError(
            f"{where}: no AWS credentials found; set AWS_PROFILE (or the targets.cloudwatch profile), "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run where an instance or task role is available"
        )
    if isinstance(exc, NoRegionError):
        return OperationError(f"{where}: no AWS region; set targets.cloudwatch.region")
    return OperationError(f"{where}: {type(exc).__name__}: {exc}")


def _config(body: Any) -> str:
    """An alarm's configuration without its tags (which ``PutMetricAlarm`` ignores on an update), canonical."""
    return canonical({k: v for k, v in body.items() if k != "Tags"} if isinstance(body, dict) else body)


class CloudWatchTarget(GuardedTarget, Target):
    """Metric alarms in one AWS account and region."""

    NOUN: ClassVar[str] = "alarm"
    SERVICE: ClassVar[str] = "CloudWatch"
    MARKER: ClassVar[str] = "tags"

    type: ClassVar[str] = "cloudwatch"

    def __init__(self, owner: Backend, config: CloudWatchConfig) -> None:
        self.owner, self.spec, self.config = owner, owner.spec, config
        self.prefix = f"memprov-{owner.spec.env}-"
        self.rules = retry.AwsStandard()  # one retry quota per client, as botocore keeps
        self._client: Any = None
        self._lock = threading.Lock()
        self.lookups: Batcher[str, dict[str, Any]] = Batcher(self._describe_batch, BATCH)
        self.deletes: Batcher[str, bool] = Batcher(self._delete_batch, BATCH)

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
                        # botocore sends once: memprov retries each request (adaptive keeps the rate limiter)
                        retries={"total_max_attempts": 1, "mode": self.config.retry_mode},
                        connect_timeout=self.config.timeout,
                        read_timeout=self.config.timeout,
                        user_agent_extra="memprov",
                        max_pool_connections=POOL,
                    ),
                )
            return self._client

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """One attempt of ``fn`` (one request), with botocore errors as memprov's."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn()
        except (ClientError, BotoCoreError) as e:
            raise error(f"CloudWatch {self.config.region}: {what}", e) from e

    def request(self, what: str, fn: Callable[[], T]) -> T:
        """``fn`` (one request), retried on its own by the AWS standard rules."""
        return retry.request(self.rules, lambda: self.call(what, fn))

    # --- reading -------------------------------------------------------------------------------
    def describe_alarms(self, **kw: Any) -> list[dict[str, Any]]:
        """Every page of ``DescribeAlarms``, each page one request retried on its own."""
        out: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            args = {
                "AlarmTypes": ["MetricAlarm"],
                "MaxRecords": PAGE_SIZE,
                **kw,
                **({"NextToken": token} if token else {}),
            }
            page = self.request("DescribeAlarms", lambda a=args: self.client.describe_alarms(**a))  # type: ignore[misc]
            out += page.get("MetricAlarms", [])
            token = page.get("NextToken")
            if not token:
                return out

    def tags(self, arn: str) -> list[dict[str, str]]:
        found = self.request(f"ListTagsForResource {arn}", lambda: self.client.list_tags_for_resource(ResourceARN=arn))
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
            tags = list(pool.map(retry.bound(self.tags), [str(a["AlarmArn"]) for a in alarms]))
        out = [self._resource(a, t) for a, t in zip(alarms, tags, strict=True)]
        return sorted((r for r in out if r.owned or r.key in wanted), key=lambda r: r.key)

    def _describe_batch(self, names: list[str]) -> Mapping[str, dict[str, Any]]:
        return {str(a["AlarmName"]): a for a in self.describe_alarms(AlarmNames=names) if a.get("AlarmName") in names}

    def current(self, name: str) -> Resource | None:
        """The alarm as it is now (with its tags), or None; looked up with the others asked at the same time."""
        alarm = self.lookups(name)
        return None if alarm is None else self._resource(alarm, self.tags(str(alarm["AlarmArn"])))

    # --- writing -------------------------------------------------------------------------------
    def _put(self, desired: Resource) -> None:
        """``PutMetricAlarm``; when it keeps failing, the alarm is read back (its configuration, not its tags)."""

        def landed() -> bool:
            now = self.current(desired.key)
            return now is not None and _config(self.owner.normalise(now.body)) == _config(
                self.owner.normalise(desired.body)
            )

        retry.write(
            self.rules,
            lambda: self.call(f"PutMetricAlarm {desired.key}", lambda: self.client.put_metric_alarm(**desired.body)),
            landed,
        )

    def create(self, desired: Resource, *, force: bool = False) -> None:
        now = self.current(desired.key)
        if now is not None and not now.owned:  # ours already (a retried put that had succeeded): just put
            raise OperationError(
                f"alarm {desired.key} appeared in CloudWatch after the plan, not managed by memprov; nothing was "
                "written. Run memprov plan again to review it."
            )
        if self.same(now, desired):
            return
        self._put(desired)

    def version(self, resource: Resource) -> str | None:
        return resource.handle.updated if isinstance(resource.handle, Live) else None

    def update(self, desired: Resource, live: Resource, *, force: bool = False) -> None:
        self.check_takeover(live, force)
        now = self.current(desired.key)
        if now is not None and now.owned and self.same(now, desired):
            return  # already as desired: memprov's own earlier attempt
        self.check_unchanged(now, live, "updated", force)
        assert now is not None and isinstance(now.handle, Live)
        self._put(desired)  # CloudWatch ignores Tags on an update: re-tag
        arn, want = now.handle.arn, list(desired.body.get("Tags", []))
        stale = sorted({t["Key"] for t in now.body["Tags"]} - {t["Key"] for t in want})
        stale = [k for k in stale if k == "managed-by" or k.startswith("memprov-")]

        def tagged() -> bool:
            now_tags = {t["Key"]: t.get("Value") for t in self.tags(arn)}
            wanted = all(now_tags.get(t["Key"]) == t.get("Value") for t in want)
            return wanted and not set(stale) & set(now_tags)

        def retag() -> None:
            if want:
                self.call(f"TagResource {desired.key}", lambda: self.client.tag_resource(ResourceARN=arn, Tags=want))
            if stale:
                self.call(
                    f"UntagResource {desired.key}", lambda: self.client.untag_resource(ResourceARN=arn, TagKeys=stale)
                )

        try:
            retry.write(self.rules, retag, tagged)
        except OperationError as e:
            raise OperationError(f"{e}; {retry.PARTLY}: its configuration was updated, its tags were not") from e

    def delete(self, live: Resource, *, force: bool = False) -> None:
        if not self.check_deletable(self.current(live.key), live, force):
            return
        self.deletes(live.key)

    def _delete_batch(self, names: list[str]) -> Mapping[str, bool]:
        more = f" and {len(names) - 1} more" if len(names) > 1 else ""

        def send(some: list[str]) -> None:
            self.call(f"DeleteAlarms {some[0]}{more}", lambda: self.client.delete_alarms(AlarmNames=some))

        def once() -> None:
            try:
                send(names)
            except OperationError as e:  # CloudWatch refuses the batch when one of them is gone already
                if _code(e) != "ResourceNotFound":
                    raise
                left = list(self._describe_batch(names))
                if left:
                    send(left)

        retry.write(self.rules, once, lambda: not self._describe_batch(names))
        return dict.fromkeys(names, True)


def _code(e: Exception) -> str:
    """The AWS error code behind one of memprov's errors, or ``""``."""
    from botocore.exceptions import ClientError

    cause = e.__cause__
    return str(cause.response.get("Error", {}).get("Code", "")) if isinstance(cause, ClientError) else ""
