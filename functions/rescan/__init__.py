"""Rescans of stored files: list READY files, scan them again, quarantine any found infected."""
