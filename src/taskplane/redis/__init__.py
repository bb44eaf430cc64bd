"""Redis access: key names, Lua scripts and client construction."""
