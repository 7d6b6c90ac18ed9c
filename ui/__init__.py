"""Gradio web page for the review sentiment classifier (talks to TorchServe over REST)."""
