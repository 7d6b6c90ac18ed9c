"""TorchServe's token keys, read from the key_file.json the server writes.

Users never copy keys by hand: every client of the project holds a `KeyFile` and, when the
server refuses a key (TorchServe 0.12 answers 400 InvalidKeyException), calls `refresh()`: re-read the file, and if the
refused key is still there (it expired), ask the token API for a new one with the API key.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import requests


class KeyFile:
    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self._keys: dict[str, str] = {}
        self._lock = threading.Lock()

    @classmethod
    def of(cls, key_file: str | Path | KeyFile | None) -> KeyFile:
        """A KeyFile from a path, an existing KeyFile, or the default run folder's."""
        if isinstance(key_file, KeyFile):
            return key_file
        from review_sentiment.paths import RUN_DIR

        return cls(key_file or RUN_DIR / "key_file.json")

    @property
    def enabled(self) -> bool:
        """False when there is no key file: the server runs with auth off."""
        return self.path is not None and self.path.exists()

    def _read(self) -> dict[str, str]:
        if not self.enabled:
            return {}
        # TorchServe rewrites the file in place: a read can catch it half written.
        for _ in range(20):
            try:
                data = json.loads(self.path.read_text())  # type: ignore[union-attr]
                break
            except json.JSONDecodeError:
                time.sleep(0.1)
        else:
            return {}
        return {kind: entry["key"] for kind, entry in data.items() if isinstance(entry, dict) and "key" in entry}

    def key(self, kind: str) -> str | None:
        with self._lock:
            if not self._keys:
                self._keys = self._read()
            return self._keys.get(kind)

    def headers(self, kind: str) -> dict[str, str]:
        key = self.key(kind)
        return {"Authorization": f"Bearer {key}"} if key else {}

    def renew(self, kind: str, management_url: str, timeout: float = 10) -> requests.Response:
        """Have the server write a new `kind` key into the file (token API, with the API key)."""
        return requests.get(
            f"{management_url}/token", params={"type": kind}, headers=self.headers("API"), timeout=timeout
        )

    def refresh(self, kind: str, management_url: str | None = None, timeout: float = 10) -> bool:
        """After a refusal: True if a different key is now available for `kind`."""
        with self._lock:
            refused = self._keys.get(kind)
            self._keys = self._read()
            if self._keys.get(kind) != refused or not management_url:
                return self._keys.get(kind) != refused
            if not self._keys.get("API"):
                return False
        # The key in the file expired: have the server write a new one, then read it.
        if self.renew(kind, management_url, timeout).status_code != 200:
            return False
        with self._lock:
            self._keys = self._read()
            return self._keys.get(kind) != refused
