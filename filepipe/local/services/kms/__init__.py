"""KMS: keys and key policies."""
