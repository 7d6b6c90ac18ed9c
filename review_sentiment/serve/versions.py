"""Model versions: the name a checkpoint is released under, and what a .mar says about itself.

A released checkpoint folder holds a one-line RELEASE file ("v2"); a checkpoint without one (a
fresh training run, a test model) is named by its weights, `sha-<first 12 hex digits>`, so two
different checkpoints never share a version. The archive records the version as TorchServe's
`modelVersion` and the weights' sha256 as `checkpointSha256`, both in MAR-INF/MANIFEST.json.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from review_sentiment.core.layout import weight_files

RELEASE_FILE = "RELEASE"
MANIFEST = "MAR-INF/MANIFEST.json"
# What TorchServe accepts in a URL path segment and this project in a file name.
VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class VersionError(ValueError):
    pass


def check_version(version: str) -> str:
    if not VERSION_PATTERN.fullmatch(version):
        raise VersionError(f"model version {version!r}: use letters, digits, '.', '_' or '-' (at most 64)")
    return version


def checkpoint_sha256(checkpoint: Path, encoder: Path | None = None) -> str:
    """The sha256 of the checkpoint's weights: model.safetensors, or for a pooled checkpoint its
    head's bytes followed by its encoder's (core/layout.py)."""
    digest = hashlib.sha256()
    for weights in weight_files(checkpoint, encoder):
        if not weights.is_file():
            raise FileNotFoundError(f"{checkpoint}: no {weights}: is it a saved checkpoint?")
        with open(weights, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def release_version(checkpoint: Path, sha256: str | None = None) -> str:
    """The release name in the checkpoint's RELEASE file, else `sha-` and its weights' digest."""
    release = Path(checkpoint) / RELEASE_FILE
    if release.is_file():
        return check_version(release.read_text().strip())
    return f"sha-{(sha256 or checkpoint_sha256(checkpoint))[:12]}"


@dataclass(frozen=True)
class ArchiveInfo:
    """What a .mar's manifest says: the model's name, its version and its weights' sha256."""

    model_name: str
    version: str
    checkpoint_sha256: str | None
    model_config: dict  # the archive's model-config.yaml ({} without one)

    @classmethod
    def read(cls, mar: Path) -> ArchiveInfo:
        try:
            with zipfile.ZipFile(mar) as archive:
                model = json.loads(archive.read(MANIFEST))["model"]
                config_file = model.get("configFile")
                config = yaml.safe_load(archive.read(config_file)) if config_file else {}
        except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError, yaml.YAMLError) as error:
            raise VersionError(f"{mar} is not a readable model archive ({error})") from None
        return cls(model["modelName"], model["modelVersion"], model.get("checkpointSha256"), config or {})

    @property
    def workers(self) -> tuple[int, int]:
        """(minWorkers, maxWorkers) of its model-config; TorchServe's default of 1 without them."""
        low = int(self.model_config.get("minWorkers", 1))
        return low, max(low, int(self.model_config.get("maxWorkers", low)))


def stamp_manifest(mar: Path, target: Path, fields: dict[str, str]) -> None:
    """`mar` written to `target` with `fields` added to its manifest's "model" section.
    torch-model-archiver has no option for fields of one's own, and a zip entry cannot be
    replaced in place: the archive is rewritten, straight to where it is going."""
    with zipfile.ZipFile(mar) as source, zipfile.ZipFile(target, "w") as out:
        for item in source.infolist():
            if item.filename == MANIFEST:
                manifest = json.loads(source.read(item))
                manifest["model"].update(fields)
                out.writestr(item, json.dumps(manifest, indent=2).encode(), compress_type=item.compress_type)
                continue
            # Streamed: an archive holding a 1.2 GB encoder is never read into memory whole.
            with source.open(item) as src, out.open(item, "w") as dst:
                shutil.copyfileobj(src, dst, 1 << 22)
