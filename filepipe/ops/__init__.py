"""Operator commands: inspect executions, replay failed uploads from the dead-letter queues, rescan files."""

from __future__ import annotations

from filepipe.function_code import use_function_code

# Replay reads file records and ingest objects through the functions' own adapters (functions/common),
# so the CLI and the workflow can never disagree on the key layout.
use_function_code()
