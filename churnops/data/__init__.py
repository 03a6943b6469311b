"""Customer data: sources, cleaning, quality checks, the split, fingerprints, the demo generator."""
