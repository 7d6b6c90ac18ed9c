"""Benchmarks: in-process ceiling, TorchServe REST and gRPC, the Flask baseline, tuning sweeps."""
