"""SES: identities, the sandbox, sending."""
