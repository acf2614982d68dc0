"""Scan step: stream the upload to ClamAV's clamd and fail closed; plus the definitions-update function."""
