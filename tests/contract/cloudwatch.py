"""CloudWatch: a real moto server over HTTP (tests/fakes/cloudwatch.py), driven by real boto3."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

import boto3
from botocore.config import Config

from provisioner.backends.cloudwatch import normalise_alarm
from provisioner.plan.model import Resource
from tests.contract.base import Harness, Item
from tests.fakes.chaos import CloudWatch, HttpChaosProxy, Request
from tests.fakes.cloudwatch import FaultProxy, moto_server

OWN = {"managed-by": "memprov", "memprov-env": "aws", "memprov-spec": "batch-inference"}
WRITES = {"PutMetricAlarm", "TagResource", "UntagResource", "DeleteAlarms"}
READS = {"DescribeAlarms", "ListTagsForResource"}


class CloudWatchHarness(Harness):
    name = "cloudwatch"
    backend = "cloudwatch"
    env = "aws"
    total = 24
    updated = frozenset({"memprov-aws-image-embed-usage-warning"})
    stale = "memprov-aws-old-job-usage-warning"
    foreign = ("memprov-aws-hand-made", "memprov-aws-eu-clv-daily-usage-warning", "team-alarm")
    others: ClassVar[dict[str, dict[str, str]]] = {  # tags of the unowned ones: another environment's
        "memprov-aws-eu-clv-daily-usage-warning": {"managed-by": "memprov", "memprov-env": "aws-eu"},
        "team-alarm": {"managed-by": "terraform"},
    }
    variables: ClassVar[dict[str, str]] = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
    }

    @contextlib.contextmanager
    def serve(self) -> Iterator[None]:
        with moto_server() as moto:
            self.moto = moto
            self.faults = FaultProxy(moto)  # the fake's own layer, kept in the path
            self.proxy = HttpChaosProxy(self.faults.url, self.chaos, CloudWatch())
            self.cw: Any = boto3.client(
                "cloudwatch",
                region_name="eu-west-1",
                endpoint_url=moto,  # the test's own view: straight to moto, never faulted
                config=Config(retries={"total_max_attempts": 1}),
            )
            try:
                yield
            finally:
                self.proxy.close()
                self.faults.close()

    def write_env(self) -> None:
        path = self.repo / "environments" / "aws.yaml"
        text = path.read_text(encoding="utf-8")
        line = "    region: eu-west-1\n"
        assert line in text
        path.write_text(text.replace(line, f"{line}    endpoint_url: {self.proxy.url}\n    timeout: {self.timeout}\n"))

    # --- the service ------------------------------------------------------------------------------
    def _alarms(self) -> list[dict[str, Any]]:
        pages = self.cw.get_paginator("describe_alarms").paginate()
        return [a for page in pages for a in page["MetricAlarms"]]

    def view(self) -> dict[str, Item]:
        out = {}
        for alarm in self._alarms():
            tags = self.cw.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"]
            own = {t["Key"]: t["Value"] for t in tags}
            out[alarm["AlarmName"]] = Item({**alarm, "Tags": tags}, all(own.get(k) == v for k, v in OWN.items()))
        return out

    def edit(self, key: str) -> None:
        body = normalise_alarm(self.view()[key].body)
        if "Threshold" in body:
            body["Threshold"] = float(body["Threshold"]) + 1.5
        else:
            body["EvaluationPeriods"] = int(body["EvaluationPeriods"]) + 1
        self.cw.put_metric_alarm(**body)

    def plant(self, key: str, owned: bool) -> None:
        labels = {**OWN, "memprov-job": "old-job"} if owned else self.others.get(key, {})
        tags = [{"Key": k, "Value": v} for k, v in labels.items()]
        self.cw.put_metric_alarm(
            AlarmName=key,
            Namespace="CWAgent",
            MetricName="mem_used_percent",
            Dimensions=[{"Name": "InstanceId", "Value": "i-0123456789abcdef0"}],
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=12.5,
            ComparisonOperator="GreaterThanThreshold",
            Tags=tags,
        )

    def put(self, resource: Resource) -> None:
        self.cw.put_metric_alarm(**resource.body)
        arn = next(a["AlarmArn"] for a in self._alarms() if a["AlarmName"] == resource.key)
        self.cw.tag_resource(ResourceARN=arn, Tags=resource.body["Tags"])

    # --- faults -------------------------------------------------------------------------------------
    def is_write(self, req: Request, key: str) -> bool:
        return req.op in WRITES and key.encode() in req.body

    def is_read(self, req: Request) -> bool:
        return req.op in READS
