"""IAM enforced on every request: the gate in front of moto, and the sessions of the template's roles."""
