"""EventBridge Scheduler and scheduled rules: expressions and the clock that runs them."""
