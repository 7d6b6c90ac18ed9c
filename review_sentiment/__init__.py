"""Review sentiment serving: a DistilBERT review classifier behind TorchServe.

`review_sentiment.core` is the inference core (validation, encoding, model); it is shipped
inside the model archive and imports only torch and transformers. `review_sentiment.client`
talks to a running TorchServe, `review_sentiment.serve` builds archives and runs the server.
Importing the package changes nothing in the process: the offline variables are set by each
entry point (`core/offline.py`), and settings are read from the environment when they are used.
"""
