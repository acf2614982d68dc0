"""Start function: turns queued upload events into ProcessUpload executions named after the file."""
