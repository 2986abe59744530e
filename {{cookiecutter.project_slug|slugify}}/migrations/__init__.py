"""The migration environment: env.py, its helpers and versions/ (see env.py)."""
