"""Roll a new model version out, roll it back, and describe the versions, on a running TorchServe
without a restart and without failing a request.

    review-sentiment rollout models/review-sentiment        # or a .mar, or runs/sentiment/model
    review-sentiment rollback
    review-sentiment describe

TorchServe holds several versions of one model side by side; /predictions/<model> goes to its
default version, /predictions/<model>/<version> to that one. A rollout:
  1. puts the archive in the model store (built from a checkpoint, or copied) and registers it
     beside the version being served;
  2. waits until its workers are READY;
  3. runs the canary (canary.py): every canary review answered by the new version, over REST
     and gRPC, and its accuracy on the evaluation sample within the margin of the serving
     version's; a worker that died or a failed request stops it;
  4. makes it the default: requests arriving from then on go to it, the ones already queued
     finish on the version they were queued for;
  5. scales the previous version down to the standby workers once its queue has drained (it
     stays registered, so that rollback is instant), and unregisters any older version.
Until step 4 a failure unregisters the new version and leaves the served one as it was; a step
after it fails without changing which version is served. Rollback scales the previous version
back up, waits for READY workers, makes it the default again and puts the other on standby.

TorchServe admits registration only with the model API on (config.properties), with the
management key, and by file name from its model store (docs/security.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from review_sentiment import paths
from review_sentiment.client.refusals import ServiceError
from review_sentiment.client.rest import ApiError, TorchServeClient, ready_count
from review_sentiment.serve import canary
from review_sentiment.serve.archive import build_archive
from review_sentiment.serve.processes import rss_mib
from review_sentiment.serve.versions import ArchiveInfo, VersionError, check_version, release_version
from review_sentiment.waiting import wait_until

DEFAULT_STANDBY = 1  # workers the previous version keeps: rollback then answers at once
DRAIN_S = 2.0  # after its queue is empty, for the batches its workers are still computing


class RolloutError(RuntimeError):
    """A step failed; the message says which, why, and which version is served now."""


@dataclass(frozen=True)
class Version:
    """One registered version as TorchServe describes it."""

    version: str
    archive: str  # its file in the model store
    min_workers: int
    max_workers: int
    workers: tuple[dict, ...]
    default: bool

    @classmethod
    def of(cls, description: dict, default: str) -> Version:
        return cls(
            description["modelVersion"],
            description.get("modelUrl", ""),
            int(description.get("minWorkers", 0)),
            int(description.get("maxWorkers", 0)),
            tuple(description.get("workers", [])),
            description["modelVersion"] == default,
        )

    @property
    def ready(self) -> int:
        return ready_count({"workers": list(self.workers)})

    @property
    def pids(self) -> set[int]:
        return {int(w["pid"]) for w in self.workers if w.get("pid")}

    def rss_mib(self) -> float | None:
        """Resident memory of its workers together, when they run on this machine."""
        found = [rss_mib(pid) for pid in self.pids]
        return sum(found) if found and None not in found else None  # type: ignore[arg-type]

    def line(self) -> str:
        states = ", ".join(f"{w.get('id')} {w.get('status')} pid {w.get('pid')}" for w in self.workers) or "none"
        rss = self.rss_mib()
        states += f"; {rss:.0f} MiB resident" if rss is not None else ""
        role = "default" if self.default else "standby"
        return (
            f"{'*' if self.default else ' '} {self.version:<16} {role:<8} {self.ready} of {len(self.workers)} "
            f"workers READY (min {self.min_workers}, max {self.max_workers}; {states}) from {self.archive}"
        )


class Operator:
    """Rollout, rollback and describe for one model of one server. `say` gets one line per step;
    `on_step(name)` is called as each step starts (the tests break things there)."""

    def __init__(
        self,
        client: TorchServeClient,
        model_store: Path,
        *,
        say: Callable[[str], None] = print,
        on_step: Callable[[str], None] = lambda name: None,
        timeout: float = 300,
        grpc: bool = True,
    ):
        self.client, self.model_store = client, Path(model_store)
        self.say, self.on_step, self.timeout, self.grpc = say, on_step, timeout, grpc

    @property
    def model(self) -> str:
        return self.client.model

    # ---- what is registered ----

    def versions(self) -> list[Version]:
        """Every registered version, the default first."""
        try:
            default = self.client.default_version()
            found = [Version.of(d, default) for d in self.client.versions()]
        except ApiError as error:
            raise RolloutError(f"cannot describe model {self.model!r}: {error}") from None
        return sorted(found, key=lambda v: not v.default)

    def version(self, name: str) -> Version:
        found = next((v for v in self.versions() if v.version == name), None)
        if found is None:
            raise RolloutError(f"version {name} of {self.model} is not registered")
        return found

    def describe(self) -> list[str]:
        versions = self.versions()
        head = f"model {self.model}: {len(versions)} version(s), default {versions[0].version}"
        return [head, *(v.line() for v in versions)]

    # ---- rollout ----

    def rollout(
        self,
        source: Path,
        *,
        version: str | None = None,
        margin: float = canary.DEFAULT_MARGIN,
        standby_workers: int = DEFAULT_STANDBY,
        model_config: Path = paths.MODEL_CONFIG,
    ) -> Version:
        """Steps 1 to 5 of the module's docstring; the new version's description at the end."""
        started = time.monotonic()
        versions = self.versions()
        serving = versions[0]
        self.say(f"serving {self.model} version {serving.version} ({serving.ready} READY workers)")
        archive = self._archive(Path(source), version, model_config, {v.version for v in versions})
        new = archive.version
        self._step("register", f"1/5 register {archive.file} as version {new} beside {serving.version}")
        try:
            self.client.register(archive.file)
        except ApiError as error:
            hint = " (is the model API on? docs/security.md)" if error.status in (403, 405) else ""
            message = f"registering {archive.file} failed: {error}{hint}; still serving {serving.version}"
            raise RolloutError(message) from None
        try:
            self._step("ready", f"2/5 wait for version {new}'s workers to be READY (up to {self.timeout:.0f} s)")
            loaded = self._wait_ready(new, archive.info.workers[0])
            self.say(f"    {loaded.ready} READY workers after {time.monotonic() - started:.1f} s")
            self._step("canary", f"3/5 canary: version {new} against {serving.version}, margin {margin:.1%}")
            self._canary(new, serving.version, margin, loaded.pids)
        except BaseException as error:  # Ctrl-C too: never leave a half-checked version behind
            self._abort(new, serving.version, error)
            raise
        self._step("switch", f"4/5 make version {new} the default")
        self._set_default(new, serving.version)
        self._step("standby", f"5/5 previous version {serving.version} to {standby_workers} standby worker(s)")
        self._standby(serving, standby_workers)
        for old in versions[1:]:
            self.say(f"    unregister older version {old.version}")
            self._unregister(old.version)
        self.say(f"rolled out: version {new} is the default; `review-sentiment rollback` returns to {serving.version}")
        return self.version(new)

    def _step(self, name: str, words: str) -> None:
        self.say(words)
        self.on_step(name)

    def _archive(self, source: Path, version: str | None, model_config: Path, registered: set[str]) -> _Archive:
        """The archive to register, in the model store: built from a checkpoint folder, or a .mar
        (copied into the store when it is elsewhere)."""
        if source.suffix == ".mar":
            info = ArchiveInfo.read(source)
            if info.model_name != self.model:
                raise RolloutError(f"{source} is an archive of model {info.model_name!r}, not {self.model!r}")
            if version and version != info.version:
                raise RolloutError(f"{source} is version {info.version}; a .mar's version is set when it is built")
            self._refuse_registered(info.version, registered)
            target = self.model_store / f"{self.model}-{info.version}.mar"
            if source.resolve().parent != self.model_store.resolve():
                self.say(f"copy {source} into the model store as {target.name}")
                partial = target.with_name(f".{target.name}.part")  # renamed once whole
                shutil.copyfile(source, partial)
                os.replace(partial, target)
            else:
                target = source
            return _Archive(target.name, info)
        try:
            version = check_version(version) if version else release_version(source)
        except (VersionError, FileNotFoundError) as error:
            raise RolloutError(str(error)) from None
        self._refuse_registered(version, registered)
        file_name = f"{self.model}-{version}.mar"
        self.say(f"build {file_name} from {source} with {model_config}")
        mar = build_archive(source, self.model_store, self.model, model_config, version, file_name)
        return _Archive(mar.name, ArchiveInfo.read(mar))

    def _refuse_registered(self, version: str, registered: set[str]) -> None:
        if version in registered:
            raise RolloutError(f"version {version} is already registered: nothing to roll out")

    def _wait_ready(self, version: str, wanted: int) -> Version:
        def loaded() -> Version | None:
            found = self.version(version)
            return found if found.ready >= max(1, wanted) else None

        found = wait_until(loaded, self.timeout, interval_s=1)
        if not found:
            raise RolloutError(f"version {version} had no {wanted} READY workers after {self.timeout:.0f} s")
        return found

    def _canary(self, new: str, serving: str, margin: float, pids: set[int]) -> None:
        result = canary.run_canary(new, serving, self._predictor(TorchServeClient), self._grpc_predictor())
        accuracy_new, accuracy_old = result.accuracy[new], result.accuracy[serving]
        self.say(f"    sample accuracy: {new} {accuracy_new:.1%}, {serving} {accuracy_old:.1%}")
        after = self.version(new)
        if after.pids != pids or after.ready < len(pids):
            result.failures.append(
                f"version {new}'s workers changed during the canary (pids {sorted(pids)} -> {sorted(after.pids)}, "
                f"{after.ready} READY): a worker died"
            )
        if result.failures:
            more = len(result.failures) - 3
            shown = "; ".join(result.failures[:3]) + (f"; and {more} more" if more > 0 else "")
            raise RolloutError(f"canary failed: {shown}")
        if accuracy_new < accuracy_old - margin:
            raise RolloutError(
                f"canary failed: version {new} is {accuracy_old - accuracy_new:.1%} less accurate than {serving} "
                f"on the sample ({accuracy_new:.1%} against {accuracy_old:.1%}; the margin is {margin:.1%})"
            )
        self.say(f"    canary passed: {len(canary.CanaryData.load().canary)} canary reviews answered by {new}")

    def _predictor(self, kind: type) -> Callable[[str], canary.Predict]:
        """Each request sent once (no retries), so that any failure counts."""

        def for_version(version: str) -> canary.Predict:
            client = kind(self.client.endpoints, self.client.keys, model=self.model, version=version, retry_delays=())
            return canary.many(client)

        return for_version

    def _grpc_predictor(self) -> Callable[[str], canary.Predict] | None:
        if not self.grpc:
            return None
        # Imported here: the TorchServe image has no gRPC stubs, and `describe` runs there too.
        from review_sentiment.client.grpc_client import GrpcClient

        return self._predictor(GrpcClient)

    def _abort(self, new: str, serving: str, error: BaseException) -> None:
        self.say(f"stopped: {error}")
        self.say(f"    unregister version {new}; version {serving} stays the default")
        try:
            self._unregister(new)
        except (RolloutError, requests.RequestException) as cleanup:
            self.say(f"    could not unregister {new}: {cleanup} (remove it with DELETE /models/{self.model}/{new})")

    def _set_default(self, new: str, serving: str) -> None:
        try:
            self.client.set_default(new)
        except (ApiError, requests.RequestException) as error:
            self._abort(new, serving, error)
            raise RolloutError(f"making {new} the default failed: {error}; still serving {serving}") from None

    def _standby(self, previous: Version, workers: int) -> None:
        """Scale a version that no longer gets default traffic down, once its queue is empty and
        its last batches are done: a worker scaled down mid-batch fails that batch."""
        if previous.min_workers <= workers:
            self.say(f"    {previous.version} keeps its {previous.min_workers} worker(s)")
            return
        drained = wait_until(lambda: self._pending(previous.version) == 0, self.timeout, interval_s=0.2)
        if not drained:
            self.say(f"    {previous.version}'s queue did not drain: left at {previous.min_workers} workers")
            return
        time.sleep(DRAIN_S)
        try:
            self.client.scale(workers, workers, version=previous.version)
        except (ApiError, requests.RequestException) as error:
            raise RolloutError(f"scaling {previous.version} down failed: {error}; its workers stay") from None

    def _pending(self, version: str) -> int:
        description = self.client.describe(version=version)[0]
        return int(description.get("jobQueueStatus", {}).get("pendingRequests", 0))

    def _unregister(self, version: str) -> None:
        try:
            self.client.unregister(version)
        except ApiError as error:
            raise RolloutError(f"unregistering {version} failed: {error}") from None

    # ---- rollback ----

    def rollback(self, to: str | None = None, standby_workers: int = DEFAULT_STANDBY) -> Version:
        """The previous version (or `to`) back as the default, with its workers scaled back up
        first; the version it replaces goes to standby."""
        versions = self.versions()
        current, others = versions[0], versions[1:]
        if to is None and len(others) != 1:
            names = ", ".join(v.version for v in others) or "none"
            raise RolloutError(f"rollback needs exactly one other version (registered besides the default: {names})")
        target = next((v for v in others if v.version == (to or others[0].version)), None)
        if target is None:
            raise RolloutError(f"version {to} is not registered besides the default {current.version}")
        wanted = self._workers_of(target, current)
        self._step("scale-up", f"1/3 scale version {target.version} up to {wanted[0]} worker(s) and wait for READY")
        try:
            self.client.scale(wanted[0], wanted[1], version=target.version, timeout=int(self.timeout))
            self._wait_ready(target.version, wanted[0])
        except (ApiError, requests.RequestException, RolloutError) as error:
            raise RolloutError(
                f"version {target.version} did not get READY workers: {error}; still serving {current.version}"
            ) from None
        self._step("switch", f"2/3 make version {target.version} the default again")
        try:
            self.client.set_default(target.version)
        except (ApiError, requests.RequestException) as error:
            message = f"making {target.version} the default failed: {error}; still serving {current.version}"
            raise RolloutError(message) from None
        self._step("standby", f"3/3 version {current.version} to {standby_workers} standby worker(s)")
        self._standby(current, standby_workers)
        self.say(f"rolled back: version {target.version} is the default; {current.version} stays registered")
        return self.version(target.version)

    def _workers_of(self, target: Version, current: Version) -> tuple[int, int]:
        """The workers `target` was archived with; the current default's where its archive is gone."""
        try:
            return ArchiveInfo.read(self.model_store / target.archive).workers
        except VersionError:
            return current.min_workers, current.max_workers


@dataclass(frozen=True)
class _Archive:
    file: str  # name in the model store
    info: ArchiveInfo

    @property
    def version(self) -> str:
        return self.info.version


def main(argv: list[str] | None = None) -> int:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--run-dir", type=Path, default=paths.run_dir(), help="server run folder (keys, endpoints)")
    common.add_argument("--model-store", type=Path, default=paths.model_store(), help="the server's model store")
    common.add_argument("--model", default=paths.model_name())
    common.add_argument("--timeout", type=float, default=300, help="seconds to wait for READY workers")
    common.add_argument(
        "--standby-workers", type=int, default=DEFAULT_STANDBY, help="workers the replaced version keeps (1)"
    )
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    out = sub.add_parser("rollout", parents=[common], help="register, check and switch to a new version")
    out.add_argument("source", type=Path, help="a checkpoint folder or a .mar")
    out.add_argument("--version", help="its version (a checkpoint's RELEASE, else sha-<digest>)")
    out.add_argument("--margin", type=float, default=canary.DEFAULT_MARGIN, help="accuracy it may lose (0.02)")
    out.add_argument("--model-config", type=Path, default=paths.MODEL_CONFIG, help="for a checkpoint's archive")
    out.add_argument("--no-grpc", action="store_true", help="canary over REST only")
    back = sub.add_parser("rollback", parents=[common], help="the previous version back as the default")
    back.add_argument("--to", help="which version, when more than one other is registered")
    sub.add_parser("describe", parents=[common], help="the versions, the default and their workers")
    args = parser.parse_args(argv)

    client = TorchServeClient.for_run_dir(args.run_dir, model=args.model)
    operator = Operator(client, args.model_store, timeout=args.timeout, grpc=not getattr(args, "no_grpc", False))
    try:
        if args.command == "rollout":
            operator.rollout(
                args.source,
                version=args.version,
                margin=args.margin,
                standby_workers=args.standby_workers,
                model_config=args.model_config,
            )
        elif args.command == "rollback":
            operator.rollback(args.to, args.standby_workers)
        else:
            print("\n".join(operator.describe()))
    except (RolloutError, ServiceError, requests.RequestException) as error:
        print(f"{args.command} stopped: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
