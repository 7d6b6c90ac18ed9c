"""Reliability tooling: the soak run and the good and bad requests it sends."""
