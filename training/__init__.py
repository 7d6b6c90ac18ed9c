"""Training pipeline: offline data, base-model conversion, fine-tuning, evaluation."""
