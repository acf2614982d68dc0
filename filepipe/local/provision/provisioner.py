"""Create every resource of the transformed template through the services' public APIs."""

from __future__ import annotations

from filepipe.local.provision.quotas import check_template_quotas
from filepipe.local.provision.registry import HANDLERS
from filepipe.local.stack.context import ClientFactory, Provisioning
from filepipe.local.stack.model import LocalSite, Stack
from filepipe.template import Template


def provision(
    clients: ClientFactory,
    template: Template,
    stack_name: str,
    region: str = "us-east-1",
    parameters: dict[str, str] | None = None,
    *,
    site: LocalSite | None = None,
    create_event_source_mappings: bool = False,
    iam_enforced: bool = False,
) -> Stack:
    """Create the whole stack; returns it with the warnings for everything not emulated.

    ``site`` says where a local runtime serves the web UI and the HTTP APIs. With
    ``create_event_source_mappings`` the SQS mappings are created too: only for a caller that polls the
    queues itself and has stopped moto from invoking mapped functions on its own. ``iam_enforced``
    says the caller evaluates IAM on every request, so resource policies are stored whole.
    """
    check_template_quotas(template)
    stack = Stack(
        name=stack_name,
        region=region,
        template=template,
        parameters=template.parameter_values(parameters),
    )
    return Provisioning(clients, stack, site, create_event_source_mappings, iam_enforced).run(HANDLERS)
