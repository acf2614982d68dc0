"""CloudWatch: metrics on ``*`` (with ``cloudwatch:namespace``), alarms and dashboards on their ARNs."""

from __future__ import annotations

from filepipe.local.iam.calls import Access, Call, Needs
from filepipe.local.iam.patterns import ContextValue
from filepipe.local.iam.wire import members

_ALARM_OPERATIONS = {
    "PutMetricAlarm",
    "DeleteAlarms",
    "DescribeAlarmHistory",
    "EnableAlarmActions",
    "DisableAlarmActions",
    "SetAlarmState",
    "PutCompositeAlarm",
}


def needs(call: Call) -> Needs:
    action = f"cloudwatch:{call.operation}"
    params = call.params
    if call.operation == "PutMetricData":
        context: dict[str, ContextValue] = {}
        if params.get("Namespace"):
            context["cloudwatch:namespace"] = str(params["Namespace"])
        return Needs((Access(action, "*", context),))
    if call.operation in _ALARM_OPERATIONS:
        names = members(params, "AlarmNames") or [str(n) for n in params.get("AlarmNames", [])]
        if params.get("AlarmName"):
            names.append(str(params["AlarmName"]))
        if names:
            return Needs(tuple(Access(action, call.arn("cloudwatch", f"alarm:{name}")) for name in names))
    if call.operation in ("PutDashboard", "GetDashboard") and params.get("DashboardName"):
        resource = call.arn("cloudwatch", f"dashboard/{params['DashboardName']}", region=False)
        return Needs((Access(action, resource),))
    # Smithy RPC v2 requests (CBOR bodies) are not read: their alarm names are unknown, so "*".
    return Needs((Access(action, "*"),))
