"""TorchServe's token keys, read from the key_file.json the server writes.

Users never copy keys by hand: every client of the project holds a `KeyFile` and, when the
server refuses a key (TorchServe 0.12 answers 400 InvalidKeyException), calls `refresh()` with
the key it sent: re-read the file, and if the refused key is still there (it expired), ask the
token API for a new one with the API key.

Renewal is single-flight per key file and kind: each renewal makes the server drop the previous
key, so when many threads are refused at once (keys expire every 60 minutes under a batch of 16
requests in flight), the first renews and the others find the file already holds a key other
than the one they sent, and use it.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import requests

MAX_ATTEMPTS = 3  # a request, then retries after a renewal (another process may renew in between)

_renewals: dict[tuple[str, str], threading.Lock] = {}  # (resolved key file, kind) -> its renewal lock
_renewals_guard = threading.Lock()


def _renewal_lock(path: Path, kind: str) -> threading.Lock:
    # One per file and kind across KeyFile objects: the UI, the CLI's threads and tests may each
    # hold their own KeyFile of the same server.
    with _renewals_guard:
        return _renewals.setdefault((str(path.resolve()), kind), threading.Lock())


def bearer(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


class KeyFile:
    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self._keys: dict[str, str] = {}
        self._lock = threading.Lock()
        self.renewals = 0  # token API calls made by this object (tests count them)

    @classmethod
    def of(cls, key_file: str | Path | KeyFile | None) -> KeyFile:
        """A KeyFile from a path, an existing KeyFile, or the default run folder's."""
        if isinstance(key_file, KeyFile):
            return key_file
        from review_sentiment.paths import run_dir

        return cls(key_file or run_dir() / "key_file.json")

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

    def current(self) -> dict[str, str]:
        """Every key the file holds now, by kind ("inference", "management", "API")."""
        return self._read()

    def headers(self, kind: str) -> dict[str, str]:
        return bearer(self.key(kind))

    def renew(self, kind: str, management_url: str, timeout: float = 10) -> requests.Response:
        """Have the server write a new `kind` key into the file (token API, with the API key)."""
        return requests.get(
            f"{management_url}/token", params={"type": kind}, headers=self.headers("API"), timeout=timeout
        )

    def refresh(
        self, kind: str, management_url: str | None = None, refused: str | None = None, timeout: float = 10
    ) -> bool:
        """After the server refused `refused` (the key the request sent): True if another key is
        now available for `kind`, renewing it through the token API only if the file still
        holds the refused key."""
        if not self.enabled:
            return False
        with _renewal_lock(self.path, kind):  # type: ignore[arg-type]
            if self._reload(kind) != refused:  # renewed by another thread or process, or rotated
                return self.key(kind) is not None
            if not management_url or not self.key("API"):
                return False
            self.renewals += 1
            if self.renew(kind, management_url, timeout).status_code != 200:
                return False
            current = self._reload(kind)
            return current is not None and current != refused

    def _reload(self, kind: str) -> str | None:
        keys = self._read()
        with self._lock:
            self._keys = keys
            return keys.get(kind)
