"""A streaming subscription business: no id column, a 0/1 `cancelled` target."""
