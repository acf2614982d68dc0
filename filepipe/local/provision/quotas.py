"""CloudFormation's template quotas, checked before anything is created, as CloudFormation checks them.

The figures are the CloudFormation user guide's "Understand CloudFormation quotas" (500 resources since
2020; before, 200). Resources are counted after the SAM transform, as CloudFormation counts the processed
template; the size is the template file's, as `sam deploy` uploads it to S3 for CloudFormation.
"""

from __future__ import annotations

from filepipe.template import Template

MAX_RESOURCES = 500
MAX_PARAMETERS = 200
MAX_OUTPUTS = 200
MAX_DESCRIPTION_BYTES = 1024
MAX_TEMPLATE_BYTES = 1024 * 1024  # a template body in an S3 object
MAX_LOGICAL_ID_CHARS = 255


class TemplateQuotaExceeded(ValueError):
    """The template breaks a quota: CloudFormation refuses it before creating anything."""


def check_template_quotas(template: Template) -> None:
    counted = (
        ("resources", len(template.resources), MAX_RESOURCES),
        ("parameters", len(template.parameters), MAX_PARAMETERS),
        ("outputs", len(template.outputs), MAX_OUTPUTS),
    )
    for what, count, limit in counted:
        if count > limit:
            raise TemplateQuotaExceeded(
                f"Template format error: Number of {what}, {count}, is greater than maximum allowed, {limit}"
            )
    description = str(template.source.get("Description", ""))
    if len(description.encode()) > MAX_DESCRIPTION_BYTES:
        raise TemplateQuotaExceeded(
            f"Template format error: the Description is {len(description.encode())} bytes; "
            f"at most {MAX_DESCRIPTION_BYTES}"
        )
    if template.source_bytes > MAX_TEMPLATE_BYTES:
        raise TemplateQuotaExceeded(
            f"Templates may be at most {MAX_TEMPLATE_BYTES} bytes; this one is {template.source_bytes}"
        )
    names = [*template.resources, *template.parameters, *template.outputs]
    for name in names:
        if len(name) > MAX_LOGICAL_ID_CHARS:
            raise TemplateQuotaExceeded(
                f"Template format error: {name[:40]}... is {len(name)} characters; "
                f"names are at most {MAX_LOGICAL_ID_CHARS}"
            )
