"""REST client for TorchServe's inference, management and metrics APIs."""

from __future__ import annotations

import json

import requests

from review_sentiment.client.base import ServerClient
from review_sentiment.client.keys import MAX_ATTEMPTS, bearer
from review_sentiment.client.refusals import (
    MAX_REQUEST_SIZE,
    TOO_LARGE_MESSAGE,
    ServiceError,
    is_auth_refusal,
    kind_of_answer,
)
from review_sentiment.client.retry import RETRY_DELAYS_S, pause, should_retry
from review_sentiment.core.errors import ErrorKind
from review_sentiment.status_codes import error_body

TOO_LARGE = error_body(ErrorKind.REQUEST_TOO_LARGE, TOO_LARGE_MESSAGE)

# TorchServe says "has no worker" both when its queue is full and when no worker is ready: the
# client asks which (GET /models) and says so.
UNAVAILABLE_MESSAGES = {
    ErrorKind.QUEUE_FULL: "the server is at capacity (its request queue is full); retry shortly",
    ErrorKind.NO_WORKER: "no worker is ready for the model (starting, restarting or scaled to 0)",
    ErrorKind.QUEUE_FULL_OR_NO_WORKER: "the request queue is full or no worker is ready; retry shortly",
}


class ApiError(ServiceError):
    """TorchServe answered with an error status; `body` is its JSON answer when it sent one."""

    def __init__(self, status: int, body: object):
        message = body.get("message") if isinstance(body, dict) else body
        super().__init__(kind_of_answer(status, body), str(message), status, body)

    def __str__(self) -> str:
        return f"HTTP {self.status}: {self.message}"


def ready_count(description: dict) -> int:
    """READY workers in one model's description (GET /models/<name>)."""
    return sum(w.get("status") == "READY" for w in description.get("workers", []))


def _body(response: requests.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return response.text


class TorchServeClient(ServerClient):
    def __init__(
        self,
        *args,
        session: requests.Session | None = None,
        retry_delays: tuple[float, ...] = RETRY_DELAYS_S,
        **kwargs,
    ):
        """`retry_delays`: the pauses before each new try of a prediction a worker lost (see
        client/retry.py); () sends every request once, as a raw client would."""
        super().__init__(*args, **kwargs)
        self.session = session or requests.Session()
        self.retry_delays = retry_delays

    def request(self, method: str, api: str, path: str, **kwargs) -> requests.Response:
        """One call to the `api` ("inference" or "management"); after a refusal, retried with
        the key the file now holds (renewed once for all threads if it expired)."""
        base = self.endpoints.inference_url if api == "inference" else self.endpoints.management_url
        kwargs.setdefault("timeout", self.timeout)
        extra_headers = kwargs.pop("headers", {})
        for attempt in range(1, MAX_ATTEMPTS + 1):
            key = self.keys.key(api)
            response = self.session.request(method, base + path, headers={**bearer(key), **extra_headers}, **kwargs)
            if not is_auth_refusal(response.status_code, response.text) or attempt == MAX_ATTEMPTS:
                return response
            if not self.keys.refresh(api, self.endpoints.management_url, refused=key):
                return response
        raise AssertionError("unreachable")

    def _checked(self, response: requests.Response) -> object:
        if response.status_code >= 400:
            raise ApiError(response.status_code, self._explained(response.status_code, _body(response)))
        return _body(response)

    def _explained(self, status: int, body: object) -> object:
        """TorchServe's own refusals whose message misleads or is missing, reworded (the original
        kept as `server_message`); every user of the client (CLI, UI) shows these."""
        if status == 413 and not isinstance(body, dict):
            # The frontend refuses a body over max_request_size itself, with an empty 413.
            return TOO_LARGE
        if isinstance(body, dict) and kind_of_answer(status, body) == ErrorKind.QUEUE_FULL_OR_NO_WORKER:
            try:
                ready = self.ready_workers()
            except (ApiError, requests.RequestException, LookupError, TypeError):  # no usable description
                ready = None
            if ready is None:
                kind = ErrorKind.QUEUE_FULL_OR_NO_WORKER
            else:
                kind = ErrorKind.QUEUE_FULL if ready else ErrorKind.NO_WORKER
            message = UNAVAILABLE_MESSAGES[kind]
            return {**body, "type": str(kind), "message": message, "server_message": body.get("message")}
        return body

    # Inference API
    def ping(self) -> dict:
        return self._checked(self.request("GET", "inference", "/ping"))  # type: ignore[return-value]

    def predict(self, text: str) -> dict:
        """Classify one review sent as text/plain."""
        return self._post_review("predictions", text.encode("utf-8"), "text/plain; charset=utf-8")

    def predict_json(self, payload: object) -> dict:
        """Classify one review sent as JSON ({"text": "..."})."""
        return self._post_review("predictions", json.dumps(payload).encode("utf-8"), "application/json")

    def explain(self, text: str) -> dict:
        """The prediction plus word attributions (POST /explanations): label, score,
        probabilities, attributions [{word, start, end, score}], method, steps, ..."""
        return self._post_review("explanations", text.encode("utf-8"), "text/plain; charset=utf-8")

    def _post_review(self, api_path: str, body: bytes, content_type: str) -> dict:
        lost = False
        for delay in (*self.retry_delays, None):
            try:
                response = self.request(
                    "POST",
                    "inference",
                    f"/{api_path}/{self.model_path}",
                    data=body,
                    headers={"Content-Type": content_type},
                )
            except requests.ConnectionError:
                # Far over max_request_size the frontend closes the connection while the body is
                # still being sent (seen with 10 MB): the same refusal as its empty 413.
                if len(body) > MAX_REQUEST_SIZE:
                    raise ApiError(413, TOO_LARGE) from None
                raise
            failed = response.status_code >= 400
            kind = kind_of_answer(response.status_code, _body(response)) if failed else None
            if delay is None or not should_retry(kind, response.text, lost):
                break
            lost = True
            pause(delay)
        return self._checked(response)  # type: ignore[return-value]

    # Management API
    def _model_url(self, model: str | None = None, version: str | None = None) -> str:
        """/models/<model>[/<version>]: the default version's management URL, or `version`'s."""
        return f"/models/{model or self.model}" + (f"/{version}" if version else "")

    def describe(self, model: str | None = None, version: str | None = None) -> list[dict]:
        """The default version's description (or `version`'s): its workers, batch settings, ..."""
        return self._checked(self.request("GET", "management", self._model_url(model, version)))  # type: ignore[return-value]

    def ready_workers(self, model: str | None = None, version: str | None = None) -> int:
        response = self.request("GET", "management", self._model_url(model, version))
        if response.status_code == 404:
            return 0
        description = self._checked(response)
        return ready_count(description[0]) if description else 0  # type: ignore[index]

    def scale(
        self, min_workers: int, max_workers: int | None = None, timeout: int = 120, version: str | None = None
    ) -> dict:
        """Set the worker count of the default version (or of `version`) and wait until
        TorchServe has applied it."""
        params = {
            "min_worker": min_workers,
            "max_worker": max_workers if max_workers is not None else min_workers,
            "synchronous": "true",
            "timeout": timeout,
        }
        url = self._model_url(version=version)
        response = self.request("PUT", "management", url, params=params, timeout=timeout + 10)
        return self._checked(response)  # type: ignore[return-value]

    # Model versions (the model API: token auth on and a loopback management API, docs/security.md)
    def versions(self) -> list[dict]:
        """The description of every registered version of the model (GET /models/<model>/all)."""
        return self._checked(self.request("GET", "management", f"/models/{self.model}/all"))  # type: ignore[return-value]

    def default_version(self) -> str:
        """The version /predictions/<model> answers with."""
        return self.describe()[0]["modelVersion"]

    def register(self, archive: str, initial_workers: int | None = None) -> dict:
        """Register an archive of the server's model store, by file name, without waiting for
        its workers (wait with `ready_workers(version=...)`); None: as many workers as the
        archive's model-config says (minWorkers)."""
        params = {"url": archive, "synchronous": "false"}
        if initial_workers is not None:
            params["initial_workers"] = str(initial_workers)
        return self._checked(self.request("POST", "management", "/models", params=params))  # type: ignore[return-value]

    def set_default(self, version: str) -> dict:
        path = self._model_url(version=version) + "/set-default"
        return self._checked(self.request("PUT", "management", path))  # type: ignore[return-value]

    def unregister(self, version: str) -> dict:
        return self._checked(self.request("DELETE", "management", self._model_url(version=version)))  # type: ignore[return-value]

    def metrics(self) -> str:
        response = self.session.get(self.endpoints.metrics_url, timeout=self.timeout)
        response.raise_for_status()
        return response.text
