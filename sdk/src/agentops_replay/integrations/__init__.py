"""Framework integrations. Each module imports its framework itself; importing this package imports neither."""
