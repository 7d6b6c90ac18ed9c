"""Deployment tooling: reading the Dockerfile, the wheelhouse for air-gapped image builds."""
