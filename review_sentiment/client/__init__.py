"""Clients of a running TorchServe: REST, gRPC, and the key file they share."""
