"""API Gateway HTTP APIs: routes, the JWT authorizer, CORS and function integrations."""
