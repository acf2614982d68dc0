"""IAM evaluated on every request the local runtime answers, the way AWS evaluates it."""
