"""X-Ray: traces."""
