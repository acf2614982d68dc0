"""SES: sending is authorised on the sender's identity and, in the sandbox, on each recipient's too.

SES (v1 query API and v2 REST API alike) evaluates ``ses:SendEmail``/``ses:SendRawEmail`` against
``identity/<address>`` for the From address and for every recipient while the account is in the
sandbox, as the local runtime's account is; ``ses:FromAddress`` and ``ses:Recipients`` are the
condition keys. A configuration set named in the request is authorised too.
"""

from __future__ import annotations

import base64
from email import message_from_bytes
from email.utils import getaddresses, parseaddr
from typing import Any

from filepipe.local.iam.calls import Access, Call, Needs
from filepipe.local.iam.patterns import ContextValue
from filepipe.local.iam.wire import members

_SENDS = {"SendEmail", "SendRawEmail", "SendTemplatedEmail", "SendBulkTemplatedEmail", "SendBulkEmail"}


def _address(text: str) -> str:
    return parseaddr(text)[1] or text


def _v1_message(params: dict[str, Any]) -> tuple[str, str, list[str]]:
    """(From address, display name, recipients) of a v1 send."""
    source = str(params.get("Source", ""))
    recipients = [
        *members(params, "Destination.ToAddresses"),
        *members(params, "Destination.CcAddresses"),
        *members(params, "Destination.BccAddresses"),
        *members(params, "Destinations"),
    ]
    raw = params.get("RawMessage.Data")
    if raw and (not source or not recipients):
        parsed = message_from_bytes(base64.b64decode(str(raw)))
        source = source or str(parsed.get("From", ""))
        if not recipients:
            recipients = [a for _, a in getaddresses(parsed.get_all("To", []) + parsed.get_all("Cc", []))]
    return _address(source), parseaddr(source)[0], [_address(r) for r in recipients]


def _v2_message(params: dict[str, Any]) -> tuple[str, str, list[str]]:
    source = str(params.get("FromEmailAddress", ""))
    destination = params.get("Destination", {})
    recipients = [
        *destination.get("ToAddresses", []),
        *destination.get("CcAddresses", []),
        *destination.get("BccAddresses", []),
    ]
    return _address(source), parseaddr(source)[0], [_address(str(r)) for r in recipients]


def needs(call: Call) -> Needs:
    v2 = call.path.startswith("/v2/email")
    if v2:
        if call.path.rstrip("/") != "/v2/email/outbound-emails" or call.method != "POST":
            return Needs((Access(f"ses:{call.method}", "*"),))
        call.operation = "SendEmail"
        source, display, recipients = _v2_message(call.params)
        configuration_set = call.params.get("ConfigurationSetName")
    elif call.operation in _SENDS:
        source, display, recipients = _v1_message(call.params)
        configuration_set = call.params.get("ConfigurationSetName")
    else:
        return Needs((Access(f"ses:{call.operation}", "*"),))
    action = "ses:SendRawEmail" if call.operation == "SendRawEmail" else f"ses:{call.operation}"
    if call.operation == "SendBulkTemplatedEmail":
        action = "ses:SendBulkTemplatedEmail"
    context: dict[str, ContextValue] = {
        "ses:fromaddress": source,
        "ses:recipients": tuple(recipients),
        "ses:fromdisplayname": display,
        "ses:apiversion": "2" if v2 else "1",
    }
    identities = dict.fromkeys([source, *recipients])  # in order, each once
    accesses = [Access(action, call.arn("ses", f"identity/{address}"), context) for address in identities]
    if configuration_set:
        accesses.append(Access(action, call.arn("ses", f"configuration-set/{configuration_set}"), context))
    return Needs(tuple(accesses))
