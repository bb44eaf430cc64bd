"""The reference workload (competitive-intelligence monitoring) and ``taskplane demo``, which runs it."""
