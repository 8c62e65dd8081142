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
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
# The seed notebook's random 80/20 split, for files that carry no split of their own.
TEST_FRACTION = 0.2
SPLIT_SEED = 42
_IMDB_MEMBER = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg|unsup)/(\d+)_\d+\.txt$")
_URL_MEMBER = re.compile(r"(?:^|/)aclImdb/(train|test)/urls_(pos|neg|unsup)\.txt$")
_MOVIE = re.compile(r"/title/(tt\d+)/")
# The rest of the official archive, found beside a labeled-only copy under these names.
UNSUP_ARCHIVE = "aclImdb_v1_unsup.tar.gz"
EXTRAS_ARCHIVE = "aclImdb_v1_extras.tar.gz"
_LABELS = {"positive": 1, "negative": 0, "pos": 1, "neg": 0, "1": 1, "0": 0}


class DataError(ValueError):
    """The data file is missing, unreadable, or not in a shape the trainer reads."""


@dataclass
class Split:
    texts: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    # The movie each review is about (an IMDb title id), where the data says; else empty.
    groups: list[str] = field(default_factory=list)

    def add(self, text: str, label: int, group: str = "") -> None:
        self.texts.append(text)
        self.labels.append(label)
        self.groups.append(group)

    def subset(self, rows: Sequence[int]) -> Split:
        groups = [self.groups[i] for i in rows] if self.groups else []
        return Split([self.texts[i] for i in rows], [self.labels[i] for i in rows], groups)

    def sample(self, n: int | None, seed: int) -> Split:
        """A random subset of `n` examples (all of them, shuffled, when n is None)."""
        order = list(range(len(self.texts)))
        random.Random(seed).shuffle(order)
        return self.subset(order[:n] if n else order)

    def hold_out(self, n: int, seed: int = 1337) -> tuple[Split, Split]:
        """A fixed random slice of `n` examples (at most a fifth), and the rest: the same slice
        for the same data and seed, so every model trained on the rest can be compared on it."""
        shuffled = self.sample(None, seed)
        n = min(n, len(shuffled.texts) // 5)
        return shuffled.subset(range(n)), shuffled.subset(range(n, len(shuffled.texts)))

    def split_validation(self, fraction: float, seed: int) -> tuple[Split, Split]:
        """(train, validation) with about `fraction` of the reviews in validation.

        Split by movie when every review's movie is known, so no movie is on both sides (a
        random split rewards memorising names and casts); otherwise at random, with the copies
        of a text that repeats on one side.
        """
        order = list(range(len(self.texts)))
        random.Random(seed).shuffle(order)
        wanted = int(len(order) * fraction)
        groups = self.groups if self.groups and all(self.groups) else self.texts
        keys = sorted(set(groups))
        random.Random(seed).shuffle(keys)
        sizes = Counter(groups)
        held: set[str] = set()
        taken = 0
        for key in keys:
            if taken >= wanted:
                break
            held.add(key)
            taken += sizes[key]
        kept = [i for i in order if groups[i] not in held]
        return self.subset(kept), self.subset([i for i in order if groups[i] in held])

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


def parse_review(value: str | None, where: str) -> str:
    if value is None or not value.strip():
        raise DataError(f"{where}: the review is empty")
    return value


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
    name = path.name.lower()
    if path.is_dir() or name.endswith((".tar.gz", ".tgz", ".tar")):
        return _load_imdb(path)
    if name.endswith(".csv"):
        return _nonempty(_read_csv(path), path)
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return _nonempty(_read_jsonl(path), path)
    raise DataError(f"{path}: unknown data shape (expected aclImdb folder, .tar.gz, .csv, .jsonl)")


def _nonempty(split: Split, path: Path) -> Split:
    if not split.texts:
        raise DataError(f"{path}: the file holds no labeled reviews")
    return split


def _imdb_members(path: Path) -> Iterator[tuple[str, bytes]]:
    """(name, content) of every file of an aclImdb folder or archive, names as in the archive."""
    if path.is_dir():
        root = path / "aclImdb" if (path / "aclImdb").is_dir() else path
        for file in sorted(root.rglob("*")):
            name = f"aclImdb/{file.relative_to(root).as_posix()}"
            if (_IMDB_MEMBER.search(name) or _URL_MEMBER.search(name)) and file.is_file():
                yield name, file.read_bytes()
        return
    # A gzip archive read as one says why it is unreadable; guessing, tarfile lists every
    # method it tried, a line each.
    gzipped = path.name.lower().endswith("gz")
    try:
        with tarfile.open(path, "r:gz") if gzipped else tarfile.open(path) as archive:
            for member in archive:
                if member.isfile() and (
                    _IMDB_MEMBER.search(member.name) or _URL_MEMBER.search(member.name)
                ):
                    handle = archive.extractfile(member)
                    assert handle is not None
                    yield member.name, handle.read()
            _check_ended(archive)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        reason = " ".join(str(exc).split())
        raise DataError(f"{path}: not a readable tar archive ({reason})") from exc


def _check_ended(archive: tarfile.TarFile) -> None:
    """tarfile takes a damaged header for the archive's end, and gzip checks its checksum only
    at the stream's end: read what follows the header that ended it, which must be zeros."""
    for chunk in iter(lambda: archive.fileobj.read(1 << 20), b""):
        if chunk.strip(b"\0"):
            raise tarfile.ReadError(f"damaged after {archive.offset} bytes")


def _read_imdb(path: Path) -> tuple[dict, dict]:
    """The reviews {(split, polarity, id): text} and URL lines {(split, polarity): [url]}."""
    reviews, urls = {}, {}
    for name, content in _imdb_members(path):
        if match := _IMDB_MEMBER.search(name):
            reviews[match[1], match[2], int(match[3])] = content.decode("utf-8")
        elif match := _URL_MEMBER.search(name):
            urls[match[1], match[2]] = content.decode("utf-8").splitlines()
    return reviews, urls


def _load_imdb(path: Path) -> Dataset:
    reviews, urls = _read_imdb(path)
    extras = path.parent / EXTRAS_ARCHIVE
    if not urls and extras.is_file():
        urls = _read_imdb(extras)[1]
    splits = {"train": Split(), "test": Split()}
    for (split, polarity, number), text in sorted(reviews.items()):
        if polarity != "unsup":
            lines = urls.get((split, polarity), [])
            movie = _MOVIE.search(lines[number]) if number < len(lines) else None
            splits[split].add(text, int(polarity == "pos"), movie[1] if movie else "")
    for split in splits.values():  # a movie for every review (its own where none is named), or none
        named = any(split.groups)
        split.groups = [g or f"review {i}" for i, g in enumerate(split.groups)] if named else []
    return _checked(Dataset(**splits), path)


def unlabeled_path(data: Path) -> Path | None:
    """Where the unlabeled reviews are: inside `data` when it is the whole official archive or
    folder, else the unlabeled archive beside it under its official name."""
    beside = data.parent / UNSUP_ARCHIVE
    if data.is_dir() and any(data.glob("**/train/unsup")):
        return data
    if data.is_file() and data.name == "aclImdb_v1.tar.gz":
        return data
    return beside if beside.is_file() else None


def load_unlabeled(path: Path, exclude: Sequence[str] = ()) -> list[str]:
    """The unlabeled reviews (aclImdb/train/unsup) of a folder or archive, without those that
    equal a text of `exclude` (the test reviews: learning from them would flatter the test
    figure) and without repeats."""
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    reviews = _read_imdb(path)[0]
    texts = [text for (_, polarity, _), text in sorted(reviews.items()) if polarity == "unsup"]
    if not texts:
        raise DataError(f"{path}: no aclImdb/train/unsup/*.txt reviews found")
    excluded = set(exclude)
    return list(dict.fromkeys(text for text in texts if text not in excluded))


def _checked(dataset: Dataset, path: Path) -> Dataset:
    for name, split in (("train", dataset.train), ("test", dataset.test)):
        if not split.texts:
            raise DataError(f"{path}: no aclImdb/{name}/{{pos,neg}}/*.txt reviews found")
    return dataset


def _read_csv(path: Path) -> Split:
    split = Split()
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # a spreadsheet's BOM too
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"review", "sentiment"} <= set(reader.fieldnames):
                raise DataError(f"{path}: CSV needs the columns review,sentiment")
            for line, row in enumerate(reader, start=2):
                where = f"{path}:{line}"
                split.add(parse_review(row["review"], where), parse_label(row["sentiment"], where))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except csv.Error as exc:
        raise DataError(f"{path}: not CSV after line {reader.line_num} ({exc})") from exc
    return split


def _read_jsonl(path: Path) -> Split:
    split = Split()
    try:
        with path.open(encoding="utf-8-sig") as handle:
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
                split.add(
                    parse_review(record["text"], where), parse_label(record.get("label"), where)
                )
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
