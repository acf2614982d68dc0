"""filepipe: local runtime and operator tooling."""
