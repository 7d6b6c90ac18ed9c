"""Review sentiment serving: a DistilBERT review classifier behind TorchServe.

`review_sentiment.core` is the inference core (validation, encoding, model); it is shipped
inside the model archive and imports only torch and transformers. `review_sentiment.client`
talks to a running TorchServe, `review_sentiment.serve` builds archives and runs the server.
"""

from review_sentiment.settings import apply_offline

apply_offline()  # before anything imports transformers, huggingface_hub or gradio
