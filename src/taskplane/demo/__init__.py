"""A short showcase of the core runtime (until the reference workload lands)."""
