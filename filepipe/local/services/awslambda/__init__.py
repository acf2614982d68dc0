"""Lambda: function workers and packages, quotas, invocation, SQS event source mappings."""
