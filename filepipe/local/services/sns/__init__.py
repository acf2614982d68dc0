"""SNS: topics and subscriptions."""
