"""Labeled review datasets in the shapes people have them: the official IMDb archive or folder,
the seed notebook's CSV, and JSON lines."""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
import tarfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
# The seed notebook's random 80/20 split, for files that carry no split of their own.
TEST_FRACTION = 0.2
SPLIT_SEED = 42
_IMDB_MEMBER = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/\d+_\d+\.txt$")
_LABELS = {"positive": 1, "negative": 0, "pos": 1, "neg": 0, "1": 1, "0": 0}


class DataError(ValueError):
    """The data file is missing, unreadable, or not in a shape the trainer reads."""


@dataclass
class Split:
    texts: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)

    def add(self, text: str, label: int) -> None:
        self.texts.append(text)
        self.labels.append(label)

    def sample(self, n: int | None, seed: int) -> Split:
        """A random subset of `n` examples (all of them, shuffled, when n is None)."""
        order = list(range(len(self.texts)))
        random.Random(seed).shuffle(order)
        order = order[:n] if n else order
        return Split([self.texts[i] for i in order], [self.labels[i] for i in order])

    def hold_out(self, n: int, seed: int = 1337) -> tuple[Split, Split]:
        """A fixed random slice of `n` examples (at most a fifth), and the rest: the same slice
        for the same data and seed, so every model trained on the rest can be compared on it."""
        shuffled = self.sample(None, seed)
        n = min(n, len(shuffled.texts) // 5)
        held = Split(shuffled.texts[:n], shuffled.labels[:n])
        return held, Split(shuffled.texts[n:], shuffled.labels[n:])

    def fingerprint(self) -> str:
        """A checksum of the examples that does not depend on their order."""
        digest = hashlib.sha256()
        pairs = zip(self.texts, self.labels, strict=True)
        for line in sorted(f"{label}\t{text}" for text, label in pairs):
            digest.update(line.encode() + b"\n")
        return digest.hexdigest()


@dataclass
class Dataset:
    train: Split
    test: Split


def parse_label(value: object, where: str) -> int:
    label = _LABELS.get(str(value).strip().lower())
    if label is None:
        raise DataError(f"{where}: label {value!r} is not positive/negative or 1/0")
    return label


def load_dataset(path: Path) -> Dataset:
    """Read a labeled dataset, keeping its own train/test split where it has one."""
    data = _load(path)
    return data if isinstance(data, Dataset) else _split(data)


def load_labeled(path: Path) -> Split:
    """The reviews to evaluate a model on: the test split of a dataset that has one (the
    official IMDb layout), else every labeled review in the file."""
    data = _load(path)
    return data.test if isinstance(data, Dataset) else data


def _load(path: Path) -> Dataset | Split:
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        return _load_imdb_dir(path)
    name = path.name.lower()
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        return _load_imdb_tar(path)
    if name.endswith(".csv"):
        return _nonempty(_read_csv(path), path)
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return _nonempty(_read_jsonl(path), path)
    raise DataError(f"{path}: unknown data shape (expected aclImdb folder, .tar.gz, .csv, .jsonl)")


def _nonempty(split: Split, path: Path) -> Split:
    if not split.texts:
        raise DataError(f"{path}: the file holds no labeled reviews")
    return split


def _load_imdb_dir(path: Path) -> Dataset:
    root = path / "aclImdb" if (path / "aclImdb").is_dir() else path
    splits = {"train": Split(), "test": Split()}
    for split_name, split in splits.items():
        for polarity, label in (("pos", 1), ("neg", 0)):
            for file in sorted((root / split_name / polarity).glob("*.txt")):
                split.add(file.read_text(encoding="utf-8"), label)
    return _checked(Dataset(**splits), path)


def _load_imdb_tar(path: Path) -> Dataset:
    splits = {"train": Split(), "test": Split()}
    try:
        with tarfile.open(path) as archive:
            for member in archive:
                match = _IMDB_MEMBER.search(member.name)
                if match and member.isfile():
                    handle = archive.extractfile(member)
                    assert handle is not None
                    text = handle.read().decode("utf-8")
                    splits[match[1]].add(text, 1 if match[2] == "pos" else 0)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable tar archive ({exc})") from exc
    return _checked(Dataset(**splits), path)


def _checked(dataset: Dataset, path: Path) -> Dataset:
    if not dataset.train.texts:
        raise DataError(f"{path}: no aclImdb/train/{{pos,neg}}/*.txt reviews found")
    return dataset


def _read_csv(path: Path) -> Split:
    split = Split()
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"review", "sentiment"} <= set(reader.fieldnames):
                raise DataError(f"{path}: CSV needs the columns review,sentiment")
            for line, row in enumerate(reader, start=2):
                split.add(row["review"] or "", parse_label(row["sentiment"], f"{path}:{line}"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    return split


def _read_jsonl(path: Path) -> Split:
    split = Split()
    try:
        with path.open(encoding="utf-8") as handle:
            for line, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                where = f"{path}:{line}"
                try:
                    record = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{where}: not JSON ({exc.msg})") from exc
                if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                    raise DataError(f'{where}: expected an object with "text" and "label"')
                split.add(record["text"], parse_label(record.get("label"), where))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    return split


def _split(split: Split) -> Dataset:
    shuffled = split.sample(None, SPLIT_SEED)
    cut = int(len(shuffled.texts) * (1 - TEST_FRACTION))
    return Dataset(
        Split(shuffled.texts[:cut], shuffled.labels[:cut]),
        Split(shuffled.texts[cut:], shuffled.labels[cut:]),
    )


def resolve_data(path: str | None, data_dir: Path) -> Path:
    """The given dataset path, or the official archive, downloaded once and checksum-verified."""
    if path:
        return Path(path)
    target = data_dir / "aclImdb_v1.tar.gz"
    if target.is_file() and _sha256(target) == IMDB_SHA256:
        return target
    data_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    try:
        urllib.request.urlretrieve(IMDB_URL, partial)
    except OSError as exc:
        raise DataError(f"could not download {IMDB_URL} ({exc}); set IMDB_DATA") from exc
    if _sha256(partial) != IMDB_SHA256:
        partial.unlink()
        raise DataError(f"{IMDB_URL}: downloaded archive failed its sha256 check")
    partial.rename(target)
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
