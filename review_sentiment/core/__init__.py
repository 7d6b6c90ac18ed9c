"""Inference core: plain Python, no TorchServe imports, shipped inside the .mar."""
