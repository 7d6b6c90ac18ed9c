"""gRPC client for TorchServe's inference API (`Predictions`), with the same keys as REST."""

from __future__ import annotations

import json

import grpc

from review_sentiment.client.base import ServerClient
from review_sentiment.client.keys import MAX_ATTEMPTS
from review_sentiment.client.protos import ensure_stubs
from review_sentiment.client.refusals import (
    TOKEN_REFUSED,
    TOO_LARGE_MESSAGE,
    ServiceError,
    kind_of_answer,
    kind_of_grpc,
)
from review_sentiment.client.retry import RETRY_DELAYS_S, pause, should_retry
from review_sentiment.core.errors import ErrorKind
from review_sentiment.status_codes import GRPC_CODE

ensure_stubs()
from review_sentiment.client.grpc_stubs import inference_pb2, inference_pb2_grpc  # noqa: E402


class GrpcPredictionError(ServiceError):
    """A refused or failed prediction. `code`: the gRPC status; `status`: the HTTP status the
    handler chose when it refused the review (None when the frontend failed the call)."""

    def __init__(self, code: grpc.StatusCode, details: str, status: int | None = None, kind: ErrorKind | None = None):
        kind = kind or kind_of_grpc(code.name, details)
        super().__init__(kind, details, status)
        self.code, self.details = code, details

    def __str__(self) -> str:
        return f"{self.code.name}: {self.details}"


def _raise_if_error(body: object) -> None:
    # TorchServe 0.12's gRPC frontend answers OK even when the handler set a 4xx status for
    # the request, so the handler's JSON error body is recognised here.
    if isinstance(body, dict) and {"code", "type", "message"} <= body.keys():
        kind = kind_of_answer(int(body["code"]), body)
        code = getattr(grpc.StatusCode, GRPC_CODE[kind])
        raise GrpcPredictionError(code, str(body["message"]), int(body["code"]), kind)


class GrpcClient(ServerClient):
    def __init__(self, *args, retry_delays: tuple[float, ...] = RETRY_DELAYS_S, **kwargs):
        super().__init__(*args, **kwargs)
        self.retry_delays = retry_delays
        self.channel = grpc.insecure_channel(self.endpoints.grpc_target)
        self.stub = inference_pb2_grpc.InferenceAPIsServiceStub(self.channel)

    def predict(self, text: str) -> dict:
        """Classify one review; the body is the UTF-8 text, as in a text/plain REST call. A
        request a worker lost is sent again (client/retry.py), as over REST."""
        lost = False
        for delay in (*self.retry_delays, None):
            try:
                return self._predict_once(text)
            except GrpcPredictionError as error:
                # A refusal of the handler (it has a status) is final; TorchServe's losses are not.
                if delay is None or error.status is not None or not should_retry(error.kind, error.details, lost):
                    raise
                lost = True
                pause(delay)
        raise AssertionError("unreachable")

    def _predict_once(self, text: str) -> dict:
        request = inference_pb2.PredictionsRequest(
            model_name=self.model, model_version=self.version or "", input={"data": text.encode("utf-8")}
        )
        for attempt in range(1, MAX_ATTEMPTS + 1):
            key = self.keys.key("inference")
            # gRPC metadata names are lowercase on the wire (HTTP/2); grpcio refuses any other spelling.
            metadata = [("authorization", f"Bearer {key}")] if key else []
            try:
                response = self.stub.Predictions(request, metadata=metadata, timeout=self.timeout)
            except grpc.RpcError as err:
                details = err.details() or ""
                kind = kind_of_grpc(err.code().name, details, request.ByteSize())
                refused = kind == ErrorKind.NOT_AUTHORIZED or TOKEN_REFUSED in details.lower()
                if (
                    refused
                    and attempt < MAX_ATTEMPTS
                    and self.keys.refresh("inference", self.endpoints.management_url, refused=key)
                ):
                    continue
                if kind == ErrorKind.REQUEST_TOO_LARGE:  # TorchServe's answer has no words for it
                    details = TOO_LARGE_MESSAGE
                raise GrpcPredictionError(err.code(), details, kind=kind) from None
            body = json.loads(response.prediction)
            _raise_if_error(body)
            return body
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> GrpcClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
