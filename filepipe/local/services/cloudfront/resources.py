"""CloudFront resources: not emulated; the local web server stands in for the distribution."""

from __future__ import annotations

from filepipe.local.stack.context import Created, Placeholder, Properties, Provisioning, ServiceHandlers

HANDLERS = ServiceHandlers()


@HANDLERS.register("AWS::CloudFront::Distribution")
def create_distribution(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    props.items()
    physical = provisioning.name(logical)
    if provisioning.site is None:
        provisioning.warn("CloudFront is not emulated locally", logical)
        return physical, Placeholder(physical)
    provisioning.warn(
        f"CloudFront is not emulated: the local web server serves the site at {provisioning.site.web_origin}",
        logical,
    )
    return physical, {"DomainName": provisioning.site.web_host, "Id": physical}


@HANDLERS.register("AWS::CloudFront::OriginAccessControl")
def create_origin_access_control(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    props.items()
    physical = provisioning.name(logical)
    site = (
        f": the local web server serves the site at {provisioning.site.web_origin}"
        if provisioning.site
        else " locally"
    )
    provisioning.warn(f"CloudFront is not emulated{site}", logical)
    return physical, Placeholder(physical)
