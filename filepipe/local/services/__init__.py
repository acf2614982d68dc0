"""The AWS services the template uses, one package each: emulation, moto patches, limits, IAM mapping."""
