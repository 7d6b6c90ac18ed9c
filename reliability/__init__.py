"""Reliability tooling: servers with special settings, worker processes, the soak run."""
