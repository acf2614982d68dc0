"""Promote and quarantine functions: move the original to where its outcome says it belongs."""
