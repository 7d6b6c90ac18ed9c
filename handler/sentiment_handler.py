"""TorchServe adapter for the review sentiment classifier.

A thin layer: TorchServe's batch in, one JSON answer per request out. All the logic
(validation, tokenization, model, softmax, explanations) lives in `review_sentiment.core`,
shipped in the archive beside this file. A handler file defines exactly one class: TorchServe
picks it.

POST /explanations/<model> lands in the same queue and batches as /predictions; the frontend
marks each request with the header `explain: True` (or `False`). BaseHandler looks at request 0
only and sends the whole batch one way, so this handler reads the flag per request instead.

Every prediction and explanation names what produced it: "model" (the name it is registered
under) and "model_version" (the archive's modelVersion), and so do the handler's metrics
(dimension ModelVersion): TorchServe's own metrics call a request to /predictions/<model>
"default", whichever version that was.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ts.metrics.dimension import Dimension
from ts.metrics.metric_type_enum import MetricTypes
from ts.torch_handler.base_handler import BaseHandler

from review_sentiment.core.errors import RequestError
from review_sentiment.core.offline import apply_offline
from review_sentiment.core.validation import header, payload_of
from review_sentiment.status_codes import error_body, http_status

if TYPE_CHECKING:
    from review_sentiment.core.classifier import BatchStats, Outcome

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"  # folder of the checkpoint inside the .mar


class SentimentHandler(BaseHandler):
    def initialize(self, context) -> None:
        # The worker's start: the offline switches first (the launcher and the images set them
        # too), then transformers, which reads some of them on import.
        apply_offline()
        import transformers

        from review_sentiment.core.classifier import SentimentClassifier, resolve_device
        from review_sentiment.core.settings import InferenceSettings

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        properties = context.system_properties
        yaml_config = getattr(context, "model_yaml_config", None) or {}
        settings = InferenceSettings.from_sources(yaml_config.get("handler"))
        manifest = (getattr(context, "manifest", None) or {}).get("model", {})
        self.identity = {"model": context.model_name, "model_version": manifest.get("modelVersion")}
        self.device = resolve_device(properties.get("gpu_id"))
        self.classifier = SentimentClassifier.load(
            Path(properties["model_dir"]) / CHECKPOINT_DIR,
            settings,
            self.device,
            workers=int(yaml_config.get("maxWorkers", 1) or 1),
        )
        self.initialized = True
        # Settings only: review text is never logged.
        logger.info(
            "sentiment model ready on %s with %s: %s version %s",
            self.device,
            settings,
            self.identity["model"],
            self.identity["model_version"],
        )

    def preprocess(self, data: list) -> tuple[list, list, list]:
        """Payloads, content types and explanation flags; validation happens per request in the core."""
        headers = [self.context.get_all_request_header(i) or {} for i in range(len(data))]
        content_types = [header(h, "Content-Type") for h in headers]
        # Exactly the frontend's own lowercase "explain" (added after the client's headers): a
        # client's "Explain: True" on /predictions must not turn it into an explanation.
        explain = [h.get("explain") == "True" for h in headers]
        return [payload_of(row) for row in data], content_types, explain

    def explain_handle(self, data_preprocess: tuple[list, list, list], raw_data: list) -> list[str]:
        """BaseHandler calls this instead of inference when request 0 is an explanation; the
        flags from preprocess already route each request, so both paths are the same."""
        return self.postprocess(self.inference(data_preprocess))

    def inference(self, inputs: tuple[list, list, list], *args, **kwargs) -> list[Outcome]:
        outcomes, stats = self.classifier.classify(*inputs)
        if stats is not None:
            self._record(stats)
        return outcomes

    def postprocess(self, outcomes: list) -> list[str]:
        responses = []
        for idx, outcome in enumerate(outcomes):
            self.context.set_response_content_type(idx, "application/json")
            if isinstance(outcome, RequestError):
                self.context.set_response_status(http_status(outcome.kind), outcome.message, idx)
                responses.append(json.dumps(error_body(outcome.kind, outcome.message)))
            else:
                responses.append(json.dumps({**outcome.to_dict(), **self.identity}))
        rejected = sum(isinstance(o, RequestError) for o in outcomes)
        if len(outcomes) > rejected:
            self._add("AnsweredRequests", len(outcomes) - rejected, "count", MetricTypes.COUNTER)
        if rejected:
            self._add("RejectedRequests", rejected, "count", MetricTypes.COUNTER)
        return responses

    def _add(self, name: str, value: float, unit: str, metric_type: MetricTypes) -> None:
        """One metric of this model version (a new list each call: TorchServe appends to it)."""
        version = [Dimension("ModelVersion", str(self.identity["model_version"]))]
        self.context.metrics.add_metric(name, value, unit, dimensions=version, metric_type=metric_type)

    def _record(self, stats: BatchStats) -> None:
        for name, value, unit in (
            ("BatchSize", stats.size, "count"),
            ("TokensPerBatch", stats.tokens, "count"),
            ("PaddedTokensPerBatch", stats.padded_tokens, "count"),
            ("PreprocessTime", round(stats.tokenize_ms, 3), "ms"),
            ("InferenceTime", round(stats.inference_ms, 3), "ms"),
        ):
            self._add(name, value, unit, MetricTypes.HISTOGRAM)
        if stats.explained:
            self._add("ExplanationsPerBatch", stats.explained, "count", MetricTypes.HISTOGRAM)
            self._add("ExplainTime", round(stats.explain_ms, 3), "ms", MetricTypes.HISTOGRAM)
