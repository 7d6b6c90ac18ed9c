"""Package a checkpoint, the handler and the inference core into a TorchServe .mar.

python -m review_sentiment.serve.archive --checkpoint models/review-sentiment
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from review_sentiment import paths
from review_sentiment.serve.versions import (
    ArchiveInfo,
    check_version,
    checkpoint_sha256,
    notices,
    release_version,
    stamp_manifest,
)

CHECKPOINT_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)


def _stage(checkpoint: Path, stage: Path) -> None:
    """Lay out what the handler imports and loads: review_sentiment/core, its status codes and checkpoint/.
    The package's __init__ imports nothing, so nothing else of review_sentiment is needed."""
    target = stage / "checkpoint"
    target.mkdir(parents=True)
    for name in CHECKPOINT_FILES:
        if (checkpoint / name).exists():
            shutil.copy2(checkpoint / name, target / name)
    for notice in notices(checkpoint):
        shutil.copy2(notice, target / notice.name)
    for required in ("config.json", "model.safetensors"):
        if not (target / required).exists():
            raise FileNotFoundError(f"{checkpoint} has no {required}: is it a saved checkpoint?")
    package = stage / "review_sentiment"
    package.mkdir()
    for module in ("__init__.py", "status_codes.py"):
        shutil.copy2(paths.REPO / "review_sentiment" / module, package)
    shutil.copytree(
        paths.REPO / "review_sentiment" / "core",
        package / "core",
        ignore=shutil.ignore_patterns("__pycache__"),
    )


def build_archive(
    checkpoint: str | Path,
    model_store: str | Path | None = None,
    model_name: str | None = None,
    model_config: str | Path = paths.MODEL_CONFIG,
    version: str | None = None,
    file_name: str | None = None,
) -> Path:
    """Write `<model_store>/<file_name>` (default `<model_name>.mar`) and return its path. Its
    version: `version`, else the checkpoint's release name (versions.py); the manifest also
    records the sha256 of the checkpoint's weights."""
    checkpoint, model_store = Path(checkpoint), Path(model_store or paths.model_store())
    model_name = model_name or paths.model_name()
    model_store.mkdir(parents=True, exist_ok=True)
    sha256 = checkpoint_sha256(checkpoint)
    version = check_version(version) if version else release_version(checkpoint, sha256)
    file_name = file_name or f"{model_name}.mar"
    with tempfile.TemporaryDirectory(prefix="sentiment-archive-") as work:
        stage = Path(work) / "stage"
        _stage(checkpoint, stage)
        own_tmp = Path(work) / "tmp"
        own_tmp.mkdir()
        # torch-model-archiver runs `rm -rf $TMPDIR/<model-name>`: give it a TMPDIR of its own.
        env = {**os.environ, "TMPDIR": str(own_tmp)}
        command = [
            str(Path(sys.executable).with_name("torch-model-archiver")),
            "--model-name", model_name,
            "--version", version,
            "--handler", str(paths.HANDLER_FILE),
            "--extra-files", str(stage),
            "--config-file", str(model_config),
            "--export-path", work,
            "--archive-format", "default",
            "--force",
        ]  # fmt: skip
        subprocess.run(command, env=env, check=True)
        built = Path(work) / f"{model_name}.mar"
        stamp_manifest(built, {"checkpointSha256": sha256})
        # Renamed into place once whole: the store never holds a half-written archive under its name.
        partial = model_store / f".{file_name}.part"
        shutil.copyfile(built, partial)
        os.replace(partial, model_store / file_name)
    return model_store / file_name


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the TorchServe model archive.")
    parser.add_argument("--checkpoint", default=str(paths.RELEASED_MODEL))
    parser.add_argument("--model-store", default=str(paths.model_store()))
    parser.add_argument("--model-name", default=paths.model_name())
    parser.add_argument("--model-config", default=str(paths.MODEL_CONFIG))
    parser.add_argument("--version", help="the model version (default: the checkpoint's RELEASE, else sha-<digest>)")
    args = parser.parse_args(argv)
    if not Path(args.checkpoint, "model.safetensors").exists():
        sys.exit(
            f"No model checkpoint at {args.checkpoint}. Train one with `make train`, or point "
            "CHECKPOINT=<folder> at a saved Hugging Face checkpoint."
        )
    mar = build_archive(args.checkpoint, args.model_store, args.model_name, args.model_config, args.version)
    info = ArchiveInfo.read(mar)
    print(f"archive: {mar} ({mar.stat().st_size / 1e6:.1f} MB), model {info.model_name} version {info.version}")


if __name__ == "__main__":
    main()
