"""Code shared by every filepipe Lambda function: model, errors, settings and AWS adapters."""
