"""EventBridge: buses, rules and delivery to targets."""
