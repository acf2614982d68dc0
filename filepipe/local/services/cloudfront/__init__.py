"""CloudFront: the web UI's distribution."""
