"""The AWS services the template uses, one package each: emulation, patches, resources, IAM mapping."""
