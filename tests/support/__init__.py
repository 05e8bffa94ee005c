"""Helpers shared by the test suites (paths, handler loading, test keys and chains)."""
