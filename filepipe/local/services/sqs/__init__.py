"""SQS: queues and their policies."""
