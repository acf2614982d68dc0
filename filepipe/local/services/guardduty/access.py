"""GuardDuty: REST paths to operations; SendObjectMalwareScan is ``guardduty:SendObjectMalwareScan`` on ``*``.

The Service Authorization Reference lists SendObjectMalwareScan (Write) with no condition key and no
dependent action. Authorising it on ``*`` means a policy must grant it on ``*``: a grant narrowed to a plan's
ARN is refused here, which is never more lenient than AWS whatever resource AWS evaluates.
"""

from __future__ import annotations

from filepipe.local.iam.calls import Access, Call, Needs, UnknownOperation

SEND_OBJECT_MALWARE_SCAN_PATH = "/object-malware-scan/send"
# (method, path) -> operation: the ones the local runtime answers.
_ROUTES = {("POST", SEND_OBJECT_MALWARE_SCAN_PATH): "SendObjectMalwareScan"}


def needs(call: Call) -> Needs:
    operation = _ROUTES.get((call.method, call.path.rstrip("/")))
    if operation is None:
        raise UnknownOperation(f"GuardDuty {call.method} {call.path}")
    call.operation = operation
    return Needs((Access(f"guardduty:{operation}", "*"),))
