"""The one place a TorchServe config.properties is written: the project's file
(config/config.properties) with a caller's overrides and then this run's addresses and auth switch."""

from __future__ import annotations

from collections.abc import Mapping

from review_sentiment.endpoints import Endpoints, is_loopback


def override_properties(template: str, overrides: Mapping[str, str]) -> str:
    """A config.properties text with `overrides` replacing (or, if absent, appended to) its keys."""
    pending = dict(overrides)
    lines = []
    for line in template.splitlines():
        key = line.split("=", 1)[0].strip()
        if not line.lstrip().startswith("#") and key in pending:
            line = f"{key}={pending.pop(key)}"
        lines.append(line)
    lines += [f"{k}={v}" for k, v in pending.items()]
    return "\n".join(lines) + "\n"


def model_api_allowed(bind: str, auth: bool) -> bool:
    """Registering models (the model API) needs the management key and a management API that
    only this machine reaches; anywhere else it stays off, whatever the file or a caller says."""
    return auth and is_loopback(bind)


def read_properties(text: str) -> dict[str, str]:
    """key=value lines of a config.properties (comments and blank lines skipped)."""
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and not line.lstrip().startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def render_config(
    template: str, endpoints: Endpoints, bind: str, auth: bool, overrides: Mapping[str, str] | None = None
) -> str:
    """`template` with `overrides` (a test's small queue, a benchmark's JVM flags), then the run's
    addresses and auth switch, which win: clients find the server by the endpoints it records; and
    the model API, off unless `model_api_allowed`."""
    run = {
        "inference_address": f"http://{bind}:{endpoints.inference_port}",
        "management_address": f"http://{bind}:{endpoints.management_port}",
        "metrics_address": f"http://{bind}:{endpoints.metrics_port}",
        "grpc_inference_address": bind,
        "grpc_management_address": bind,
        "grpc_inference_port": str(endpoints.grpc_inference_port),
        "grpc_management_port": str(endpoints.grpc_management_port),
        "disable_token_authorization": "false" if auth else "true",
    }
    if not model_api_allowed(bind, auth):
        run["enable_model_api"] = "false"
    return override_properties(template, {**(overrides or {}), **run})
