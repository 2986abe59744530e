"""The project's own tests: each cookbook recipe, proven on the configured database."""
