"""CloudWatch Logs: log group and log stream ARNs."""

from __future__ import annotations

from filepipe.local.iam.calls import Access, Call, Needs


def needs(call: Call) -> Needs:
    action = f"logs:{call.operation}"
    group = call.params.get("logGroupName")
    stream = call.params.get("logStreamName")
    if isinstance(group, str) and group:
        resource = f"log-group:{group}"
        if isinstance(stream, str) and stream and call.operation in ("PutLogEvents", "GetLogEvents"):
            resource += f":log-stream:{stream}"
        return Needs((Access(action, call.arn("logs", resource)),))
    return Needs((Access(action, str(call.params.get("resourceArn") or "*")),))
