"""The package version (one place; imported by the CLI, reports and the results-store stamp)."""
__version__ = "0.1.0"
