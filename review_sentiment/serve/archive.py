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
from review_sentiment.core.layout import (
    CONFIG,
    ENCODER_DIR,
    HEAD_FILE,
    MODEL_FILES,
    WEIGHTS_FILE,
    is_pooled,
    notices,
    weight_files,
)
from review_sentiment.serve.versions import (
    ArchiveInfo,
    check_version,
    checkpoint_sha256,
    release_version,
    stamp_manifest,
)


def _place(source: Path, target: Path) -> None:
    """A hard link where the file system allows one (the encoder's 1.2 GB is not copied twice;
    torch-model-archiver copies the staged files), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _stage_model(source: Path, target: Path, required: tuple[str, ...]) -> None:
    """The Hugging Face model files of `source` (layout.MODEL_FILES) into `target`."""
    target.mkdir(parents=True)
    for name in MODEL_FILES:
        if (source / name).is_file():
            _place(source / name, target / name)
    missing = [name for name in required if not (target / name).exists()]
    if missing:
        raise FileNotFoundError(f"{source} has no {', '.join(missing)}: is it a saved checkpoint?")


def _stage(checkpoint: Path, stage: Path, encoder: Path | None = None) -> None:
    """Lay out what the handler imports and loads: review_sentiment/core, its status codes and checkpoint/.
    The package's __init__ imports nothing, so nothing else of review_sentiment is needed. A
    pooled checkpoint's config, head and licence notice go into checkpoint/, its encoder (the
    checkpoint's encoder/ unless `encoder` names another folder) into checkpoint/encoder/."""
    target = stage / "checkpoint"
    if is_pooled(checkpoint):
        _stage_model(Path(encoder or checkpoint / ENCODER_DIR), target / ENCODER_DIR, (CONFIG, WEIGHTS_FILE))
        for name in (CONFIG, HEAD_FILE):
            if (checkpoint / name).is_file():
                _place(checkpoint / name, target / name)
        if not (target / HEAD_FILE).exists():
            raise FileNotFoundError(f"{checkpoint} has no {HEAD_FILE}: is it a pooled checkpoint?")
    else:
        _stage_model(checkpoint, target, (CONFIG, WEIGHTS_FILE))
    for notice in notices(checkpoint):  # the teacher's, or a distilled student's copy of it
        _place(notice, target / notice.name)
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
    encoder: str | Path | None = None,
) -> Path:
    """Write `<model_store>/<file_name>` (default `<model_name>.mar`) and return its path. Its
    version: `version`, else the checkpoint's release name (versions.py); the manifest also
    records the sha256 of the checkpoint's weights. `encoder`: a pooled checkpoint's encoder
    folder, where it is not the checkpoint's own encoder/ (the 1.2 GB EmbeddingGemma is kept
    in the data cache, not in models/)."""
    checkpoint, model_store = Path(checkpoint), Path(model_store or paths.model_store())
    model_name = model_name or paths.model_name()
    model_store.mkdir(parents=True, exist_ok=True)
    encoder = Path(encoder) if encoder else None
    sha256 = checkpoint_sha256(checkpoint, encoder)
    version = check_version(version) if version else release_version(checkpoint, sha256)
    file_name = file_name or f"{model_name}.mar"
    with tempfile.TemporaryDirectory(prefix="sentiment-archive-") as work:
        stage = Path(work) / "stage"
        _stage(checkpoint, stage, encoder)
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
        # Stamped into the store under a temporary name, then renamed once whole: the store never
        # holds a half-written archive under its name, and the archive is written there once.
        partial = model_store / f".{file_name}.part"
        stamp_manifest(Path(work) / f"{model_name}.mar", partial, {"checkpointSha256": sha256})
        os.replace(partial, model_store / file_name)
    return model_store / file_name


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the TorchServe model archive.")
    parser.add_argument("--checkpoint", default=str(paths.RELEASED_MODEL))
    parser.add_argument("--model-store", default=str(paths.model_store()))
    parser.add_argument("--model-name", default=paths.model_name())
    parser.add_argument("--model-config", default=str(paths.MODEL_CONFIG))
    parser.add_argument("--version", help="the model version (default: the checkpoint's RELEASE, else sha-<digest>)")
    parser.add_argument("--encoder", help="a pooled checkpoint's encoder folder (default: its encoder/)")
    args = parser.parse_args(argv)
    missing = [w for w in weight_files(args.checkpoint, args.encoder) if not w.is_file()]
    if missing:
        sys.exit(
            f"No model checkpoint at {args.checkpoint} (no {missing[0]}). Train one with `make train`, "
            "or point CHECKPOINT=<folder> at a saved Hugging Face checkpoint."
        )
    mar = build_archive(
        args.checkpoint, args.model_store, args.model_name, args.model_config, args.version, encoder=args.encoder
    )
    info = ArchiveInfo.read(mar)
    print(f"archive: {mar} ({mar.stat().st_size / 1e6:.1f} MB), model {info.model_name} version {info.version}")


if __name__ == "__main__":
    main()
