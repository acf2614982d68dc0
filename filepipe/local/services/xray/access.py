"""X-Ray: trace segments, telemetry and sampling, all on ``*`` (X-Ray has no resource for them)."""

from __future__ import annotations

from filepipe.local.iam.calls import Access, Call, Needs, UnknownOperation

_PATHS = {
    "/TraceSegments": "PutTraceSegments",
    "/TelemetryRecords": "PutTelemetryRecords",
    "/GetSamplingRules": "GetSamplingRules",
    "/SamplingTargets": "GetSamplingTargets",
    "/Traces": "BatchGetTraces",
    "/TraceSummaries": "GetTraceSummaries",
}


def needs(call: Call) -> Needs:
    operation = _PATHS.get(call.path.rstrip("/"))
    if operation is None:
        raise UnknownOperation(f"X-Ray {call.method} {call.path}")
    call.operation = operation
    return Needs((Access(f"xray:{operation}", "*"),))
