"""STS: assuming roles."""
