"""Step Functions resources: state machines, their definition substituted as CloudFormation does."""

from __future__ import annotations

import json
from typing import Any

from filepipe.local.stack.context import Created, Properties, Provisioning, ServiceHandlers
from filepipe.local.stack.tags import tag_list
from filepipe.template import substitute_definition

HANDLERS = ServiceHandlers()


@HANDLERS.register("AWS::StepFunctions::StateMachine")
def create_state_machine(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    name = props.get("StateMachineName") or provisioning.name(logical, max_length=80)
    definition = props["DefinitionString"]
    if not isinstance(definition, str):
        definition = json.dumps(definition)
    definition = substitute_definition(definition, props.get("DefinitionSubstitutions", {}))
    kwargs: dict[str, Any] = {
        "name": name,
        "definition": definition,
        "roleArn": props["RoleArn"],
        "type": props.get("StateMachineType", "STANDARD"),
    }
    if "TracingConfiguration" in props:
        kwargs["tracingConfiguration"] = {"enabled": bool(props["TracingConfiguration"].get("Enabled"))}
        if kwargs["tracingConfiguration"]["enabled"]:
            provisioning.warn("X-Ray tracing is not emulated locally", logical)
    if "Tags" in props:
        kwargs["tags"] = [{"key": t["Key"], "value": t["Value"]} for t in tag_list(props["Tags"])]
    if "LoggingConfiguration" in props:
        logging_config = props["LoggingConfiguration"]
        kwargs["loggingConfiguration"] = {
            "level": logging_config.get("Level", "OFF"),
            "includeExecutionData": bool(logging_config.get("IncludeExecutionData", False)),
            "destinations": [
                {"cloudWatchLogsLogGroup": {"logGroupArn": d["CloudWatchLogsLogGroup"]["LogGroupArn"]}}
                for d in logging_config.get("Destinations", [])
            ],
        }
        provisioning.warn("execution logs are not written to CloudWatch Logs locally", logical)
    arn = provisioning.client("stepfunctions").create_state_machine(**kwargs)["stateMachineArn"]
    return arn, {"Arn": arn, "Name": name}
