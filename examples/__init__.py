"""Non-Telco example datasets (seeded generators) with their reviewed contracts."""
