"""Step Functions: state machines, executions, redrive and state payload limits."""
