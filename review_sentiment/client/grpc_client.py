"""gRPC client for TorchServe's inference API (`Predictions`), with the same keys as REST."""

from __future__ import annotations

import json

import grpc

from review_sentiment.client.base import ServerClient
from review_sentiment.client.protos import ensure_stubs

ensure_stubs()
from review_sentiment.client.grpc_stubs import inference_pb2, inference_pb2_grpc  # noqa: E402

_AUTH_REFUSALS = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


class GrpcPredictionError(RuntimeError):
    """A refused or failed prediction; `status` is the HTTP-style code the handler chose."""

    def __init__(self, code: grpc.StatusCode, details: str, status: int | None = None):
        self.code, self.details, self.status = code, details, status
        super().__init__(f"{code.name}: {details}")


def _raise_if_error(body: object) -> None:
    # TorchServe 0.12's gRPC frontend answers OK even when the handler set a 4xx status for
    # the request, so the handler's JSON error body is recognised here.
    if isinstance(body, dict) and {"code", "type", "message"} <= body.keys():
        status = int(body["code"])
        code = grpc.StatusCode.INVALID_ARGUMENT if status < 500 else grpc.StatusCode.INTERNAL
        raise GrpcPredictionError(code, str(body["message"]), status)


class GrpcClient(ServerClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.channel = grpc.insecure_channel(self.endpoints.grpc_target)
        self.stub = inference_pb2_grpc.InferenceAPIsServiceStub(self.channel)

    def _metadata(self) -> list[tuple[str, str]]:
        return [(k.lower(), v) for k, v in self.keys.headers("inference").items()]

    def predict(self, text: str) -> dict:
        """Classify one review; the body is the UTF-8 text, as in a text/plain REST call."""
        request = inference_pb2.PredictionsRequest(model_name=self.model, input={"data": text.encode("utf-8")})
        for attempt in range(2):
            try:
                response = self.stub.Predictions(request, metadata=self._metadata(), timeout=self.timeout)
                body = json.loads(response.prediction)
                _raise_if_error(body)
                return body
            except grpc.RpcError as err:
                refused = err.code() in _AUTH_REFUSALS or "token" in (err.details() or "").lower()
                if attempt == 0 and refused and self.keys.refresh("inference", self.endpoints.management_url):
                    continue
                raise GrpcPredictionError(err.code(), err.details() or "") from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> GrpcClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
