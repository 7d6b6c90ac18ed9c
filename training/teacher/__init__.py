"""The teacher: EmbeddingGemma-300M with a classification head (`sentiment-accurate`).

weights.py fetches and checks the encoder; features.py embeds texts into a content-hashed
cache; head.py trains the head on cached features; labels.py keeps its soft labels for
distillation; run.py chains the steps, each resumable.
"""
