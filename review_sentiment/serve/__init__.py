"""Build model archives and run TorchServe: used by the Makefile, the tests and the benchmarks."""
