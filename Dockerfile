# One image for both services of docker-compose.yml (TorchServe and the Gradio UI).
# Not built in this project's CI (its machines have no Docker engine).
FROM python:3.11-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt .
# The CPU build of torch: PyPI's default linux wheel is the multi-GB CUDA one.
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt
COPY . .
ENV HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False SENTIMENT_RUN_DIR=/run/sentiment
RUN python -m review_sentiment.client.protos && python -m review_sentiment.serve.archive
