"""What every client of one TorchServe holds: its endpoints, its keys and the model name."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from review_sentiment import paths
from review_sentiment.client.keys import KeyFile
from review_sentiment.endpoints import Endpoints


class ServerClient:
    def __init__(
        self,
        endpoints: Endpoints | None = None,
        key_file: str | Path | KeyFile | None = None,
        model: str | None = None,
        timeout: float = 60,
        version: str | None = None,
    ):
        """`version`: predictions from that version of the model (/predictions/<model>/<version>);
        None: from its default version, as TorchServe chooses."""
        self.endpoints = endpoints or Endpoints.load(paths.run_dir())
        self.keys = KeyFile.of(key_file)
        self.model, self.timeout, self.version = model or paths.model_name(), timeout, version

    @property
    def model_path(self) -> str:
        """The model in a URL path: <model>, or <model>/<version> when pinned to one."""
        return f"{self.model}/{self.version}" if self.version else self.model

    @classmethod
    def for_run_dir(cls, run_dir: Path, **kwargs) -> Self:
        """A client of the server that runs from `run_dir` (its endpoints.json and key_file.json)."""
        return cls(Endpoints.load(run_dir), run_dir / "key_file.json", **kwargs)
