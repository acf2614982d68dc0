"""The HTTP API: authenticated uploads, files and share management, and the public share links."""
