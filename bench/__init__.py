"""Benchmarks that print figures: the intake, relay and end-to-end pipeline against raw rates of the same run."""
