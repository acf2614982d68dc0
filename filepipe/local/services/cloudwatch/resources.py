"""CloudWatch resources: alarms, composite alarms and dashboards, refused where CloudWatch refuses them."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable
from typing import Any

from filepipe.local.stack.context import Created, Properties, Provisioning, ServiceHandlers

# CloudWatch quotas a deploy meets: metrics (MetricDataQueries) in one alarm, characters in a composite rule.
MAX_METRICS_PER_ALARM = 10
MAX_ALARM_RULE_CHARS = 10240

HANDLERS = ServiceHandlers()


@HANDLERS.register("AWS::CloudWatch::Alarm")
def create_alarm(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    name = props.get("AlarmName") or provisioning.name(logical, max_length=255)
    kwargs: dict[str, Any] = {"AlarmName": name}
    for key in (
        "AlarmDescription",
        "Namespace",
        "MetricName",
        "Dimensions",
        "Statistic",
        "ExtendedStatistic",
        "Period",
        "EvaluationPeriods",
        "DatapointsToAlarm",
        "Threshold",
        "ComparisonOperator",
        "TreatMissingData",
        "AlarmActions",
        "OKActions",
        "InsufficientDataActions",
        "ActionsEnabled",
        "Unit",
        "Metrics",
    ):
        if key in props:
            kwargs[key] = props[key]
    for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
        if key in kwargs:
            kwargs[key] = int(kwargs[key])
    if "Threshold" in kwargs:
        kwargs["Threshold"] = float(kwargs["Threshold"])
    if len(kwargs.get("Metrics", [])) > MAX_METRICS_PER_ALARM:
        raise ValueError(
            f"{logical}: CloudWatch takes at most {MAX_METRICS_PER_ALARM} metrics per alarm "
            f"(MetricDataQueries), this one has {len(kwargs['Metrics'])}; the deploy would roll back"
        )
    for query in kwargs.get("Metrics", []):
        if "MetricStat" in query:
            query["MetricStat"]["Period"] = int(query["MetricStat"]["Period"])
    _check_alarm_can_notify(provisioning, logical, _alarm_actions(kwargs))
    provisioning.client("cloudwatch").put_metric_alarm(**kwargs)
    provisioning.warn("alarms are stored; no metrics are published locally, so they never fire", logical)
    return name, {"Arn": provisioning.arn("cloudwatch", f"alarm:{name}")}


@HANDLERS.register("AWS::CloudWatch::CompositeAlarm")
def create_composite_alarm(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    """Checked as CloudWatch checks it (rule size, alarms that exist); moto cannot store it."""
    name = props.get("AlarmName") or provisioning.name(logical, max_length=255)
    rule = str(props["AlarmRule"])
    if len(rule) > MAX_ALARM_RULE_CHARS:
        raise ValueError(
            f"{logical}: AlarmRule has {len(rule)} characters, CloudWatch takes {MAX_ALARM_RULE_CHARS}"
        )
    named = set(re.findall(r"\b(?:ALARM|OK|INSUFFICIENT_DATA)\(\s*\"?([^)\"]+?)\"?\s*\)", rule))
    if not named:
        raise ValueError(f"{logical}: AlarmRule {rule!r} names no alarm")
    existing = {
        alarm["AlarmName"]
        for page in provisioning.client("cloudwatch").get_paginator("describe_alarms").paginate()
        for alarm in page["MetricAlarms"]
    }
    existing |= provisioning.composite_alarms.keys()
    missing = {alarm.rpartition(":alarm:")[2] for alarm in named} - existing
    if missing:
        raise ValueError(f"{logical}: AlarmRule names alarms that do not exist: {', '.join(sorted(missing))}")
    _check_alarm_can_notify(provisioning, logical, _alarm_actions(props))
    provisioning.composite_alarms[name] = {
        key: props[key]
        for key in (
            "AlarmRule",
            "AlarmDescription",
            "AlarmActions",
            "OKActions",
            "InsufficientDataActions",
        )
        if key in props
    }
    provisioning.warn("alarms are stored; no metrics are published locally, so they never fire", logical)
    return name, {"Arn": provisioning.arn("cloudwatch", f"alarm:{name}")}


@HANDLERS.register("AWS::CloudWatch::Dashboard")
def create_dashboard(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    name = props.get("DashboardName") or provisioning.name(logical, max_length=255)
    provisioning.client("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=props["DashboardBody"])
    return name, {}


def _check_alarm_can_notify(provisioning: Provisioning, logical: str, actions: Iterable[str]) -> None:
    """Refuse what AWS silently drops: alarm notifications to a topic whose key CloudWatch cannot use."""
    sns = provisioning.client("sns")
    for action in actions:
        if not action.startswith("arn:aws:sns:"):
            continue
        key = sns.get_topic_attributes(TopicArn=action)["Attributes"].get("KmsMasterKeyId")
        if not key:
            continue
        if key.startswith("alias/aws/") or not _key_policy_allows_cloudwatch(
            provisioning.client("kms").get_key_policy(KeyId=key, PolicyName="default")["Policy"]
        ):
            raise ValueError(
                f"{logical}: notifies {action}, encrypted with KMS key {key}, whose key policy does not "
                "let cloudwatch.amazonaws.com use it (kms:Decrypt, kms:GenerateDataKey*): on AWS every "
                "notification would be dropped silently"
            )


def _alarm_actions(alarm: dict[str, Any]) -> list[str]:
    return [
        *alarm.get("AlarmActions", []),
        *alarm.get("OKActions", []),
        *alarm.get("InsufficientDataActions", []),
    ]


def _key_policy_allows_cloudwatch(policy_text: str) -> bool:
    """Whether Allow statements for cloudwatch.amazonaws.com cover both actions an alarm's publish needs."""
    needed = {"kms:Decrypt", "kms:GenerateDataKey"}
    for statement in json.loads(policy_text).get("Statement", []):
        services = statement.get("Principal", {}).get("Service", [])
        services = [services] if isinstance(services, str) else services
        if statement.get("Effect") != "Allow" or "cloudwatch.amazonaws.com" not in services:
            continue
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        needed = {n for n in needed if not any(fnmatch.fnmatchcase(n, a) for a in actions)}
    return not needed
