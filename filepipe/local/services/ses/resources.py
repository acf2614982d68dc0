"""SES resources: email identities, which start unverified as on AWS."""

from __future__ import annotations

from filepipe.local.stack.context import Created, Placeholder, Properties, Provisioning, ServiceHandlers

HANDLERS = ServiceHandlers()


@HANDLERS.register("AWS::SES::EmailIdentity")
def create_email_identity(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    """An identity starts unverified, as on AWS: nothing is created in SES until the operator's step.

    moto marks an identity verified the moment it exists (and then sends from it), so the identity
    stays out of moto until `filepipe ses verify` or `filepipe local --verify-email` verifies it.
    """
    identity = str(props["EmailIdentity"])
    provisioning.warn(
        "SES identities start unverified and no verification email is sent locally; verify one with "
        "`filepipe ses verify ADDRESS` (or `filepipe local --verify-email ADDRESS`)",
        logical,
    )
    return identity, Placeholder(identity)
