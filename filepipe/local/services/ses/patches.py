"""SES's patches to moto: the sandbox's identity check on every send, and the mail moto accepted."""

from __future__ import annotations

import email
import inspect
from email.policy import default as default_policy
from email.utils import getaddresses, parseaddr
from typing import Any

from filepipe.local.moto_patches import Uninstall, moto_patch, replace

# SES's mailbox simulator: its addresses take mail in the sandbox without being verified.
_SES_SIMULATOR_DOMAIN = "simulator.amazonses.com"
_SENDS = ("send_email", "send_templated_email", "send_bulk_templated_email", "send_raw_email")


def _raw_recipients(destinations: list[str] | None, raw_data: str) -> list[str]:
    """A raw message's recipients: the ones given, else its To, Cc and Bcc headers (as SES reads them)."""
    if destinations:
        return list(destinations)
    message = email.message_from_string(raw_data)
    headers = [str(message[name]) for name in ("To", "Cc", "Bcc") if message[name]]
    return [address for _, address in getaddresses(headers) if address]


@moto_patch(
    *(f"moto.ses.models.SESBackend.{name}" for name in _SENDS),
    "moto.ses.models.SESBackend._is_verified_address",
    "moto.ses.exceptions.MessageRejectedError",
)
def ses_sandbox(production_access: bool) -> Uninstall:
    """SES's identity check on every send: a verified sender and, in the sandbox, verified recipients.

    SES refuses with MessageRejected naming every identity that failed; moto checks the sender only, with
    a message of its own. SESv2's sends reach the same backend methods. Also relies on each backend's
    ``rejected_messages_count`` and ``region_name``, and on the sends' parameter names (``source``,
    ``destinations``, ``raw_data``).
    """
    from moto.ses.exceptions import MessageRejectedError
    from moto.ses.models import SESBackend

    def recipients(name: str, arguments: dict[str, Any]) -> list[str]:
        destinations = arguments["destinations"]
        if name == "send_raw_email":
            return _raw_recipients(destinations, arguments["raw_data"])
        if name == "send_bulk_templated_email":
            groups = [entry.get("Destination", {}) for entry in destinations]
        else:
            groups = [destinations]
        return [address for group in groups for addresses in group.values() for address in addresses]

    def check(backend: Any, name: str, arguments: dict[str, Any]) -> None:
        source = arguments.get("source")
        if source is None and name == "send_raw_email":
            source = email.message_from_string(arguments["raw_data"]).get("From")
        failed = [source] if source and not backend._is_verified_address(source) else []
        if not production_access:
            failed += [
                address
                for address in recipients(name, arguments)
                if not parseaddr(address)[1].lower().endswith("@" + _SES_SIMULATOR_DOMAIN)
                and not backend._is_verified_address(address)
            ]
        if failed:
            backend.rejected_messages_count += 1
            raise MessageRejectedError(
                "Email address is not verified. The following identities failed the check in region "
                f"{backend.region_name.upper()}: {', '.join(dict.fromkeys(failed))}"
            )

    def checked(name: str) -> Any:
        original = getattr(SESBackend, name)
        signature = inspect.signature(original)

        def send(self: Any, *args: Any, **kwargs: Any) -> Any:
            check(self, name, signature.bind(self, *args, **kwargs).arguments)
            return original(self, *args, **kwargs)

        return send

    return replace(SESBackend, **{name: checked(name) for name in _SENDS})


def sent_emails(account: str, region: str) -> list[dict[str, Any]]:
    """Everything SES accepted, oldest first, in one shape for plain, raw and templated messages.

    Relies on ``moto.ses.models.ses_backends`` and each backend's ``sent_messages``: their ``id``,
    ``source`` and ``destinations``, and ``raw_data``, ``template`` and ``template_data`` or ``subject``
    and ``body`` by kind.
    """
    from moto.ses.models import ses_backends

    messages = []
    for message in list(ses_backends[account][region].sent_messages):
        entry: dict[str, Any] = {"id": message.id, "from": message.source}
        if hasattr(message, "raw_data"):
            parsed = email.message_from_string(message.raw_data, policy=default_policy)
            body = parsed.get_body(preferencelist=("plain", "html"))
            entry.update(
                to=list(message.destinations),
                subject=str(parsed.get("Subject", "")),
                body=body.get_content() if body is not None else "",
            )
        elif hasattr(message, "template"):
            destinations = message.destinations
            entry.update(
                to=destinations.get("ToAddresses", [])
                if isinstance(destinations, dict)
                else list(destinations),
                subject=f"(template {message.template})",
                body=str(message.template_data),
            )
        else:
            destinations = message.destinations
            entry.update(
                to=[*destinations.get("ToAddresses", []), *destinations.get("CcAddresses", [])],
                subject=message.subject,
                body=message.body,
            )
        messages.append(entry)
    return messages
