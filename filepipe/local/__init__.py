"""The local runtime: template.yaml on moto, with its functions, workflow, API and web UI on this machine."""
