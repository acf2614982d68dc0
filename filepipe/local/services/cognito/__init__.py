"""Cognito user pools: pools and their app clients."""
