"""Step Functions: state machine and execution ARNs (the IAM prefix is ``states``)."""

from __future__ import annotations

from filepipe.local.iam.calls import Access, Call, Needs

_NO_RESOURCE = {
    "ListStateMachines",
    "ListActivities",
    "SendTaskSuccess",
    "SendTaskFailure",
    "SendTaskHeartbeat",
}


def needs(call: Call) -> Needs:
    params = call.params
    action = f"states:{call.operation}"
    if call.operation in _NO_RESOURCE:
        return Needs((Access(action, "*"),))
    if call.operation == "CreateStateMachine" and params.get("name"):
        return Needs((Access(action, call.arn("states", f"stateMachine:{params['name']}")),))
    resource = (
        params.get("executionArn")
        or params.get("stateMachineArn")
        or params.get("mapRunArn")
        or params.get("resourceArn")
        or params.get("activityArn")
        or "*"
    )
    return Needs((Access(action, str(resource)),))
