"""IAM the service: roles and the requests that manage them (evaluation lives in filepipe.local.iam)."""
