"""The stack as the local runtime deploys it: the model, the handlers' context, schedule expressions."""
