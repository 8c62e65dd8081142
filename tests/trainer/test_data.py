import tarfile

import pytest

from tests.factories import NEGATIVE, POSITIVE, write_csv, write_imdb_folder, write_jsonl
from trainer import data
from trainer.data import DataError, Split, load_dataset, load_labeled, resolve_data

ALL = len(POSITIVE) + len(NEGATIVE)


def test_reads_the_official_folder_with_its_own_split(tmp_path) -> None:
    folder = write_imdb_folder(tmp_path)
    for path in (folder, tmp_path):  # the aclImdb folder itself, or the folder holding it
        dataset = load_dataset(path)
        assert len(dataset.train.texts) == len(dataset.test.texts) == ALL
        assert sorted(dataset.train.labels) == [0] * len(NEGATIVE) + [1] * len(POSITIVE)
        assert dict(zip(dataset.train.texts, dataset.train.labels, strict=True))[POSITIVE[0]] == 1
        assert all(text.endswith(" (test)") for text in dataset.test.texts)
        assert load_labeled(path).texts == dataset.test.texts


def test_reads_the_official_archive(tmp_path) -> None:
    folder = write_imdb_folder(tmp_path / "src")
    archive = tmp_path / "aclImdb_v1.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="aclImdb")
    from_archive = load_dataset(archive)
    from_folder = load_dataset(folder)
    assert sorted(from_archive.train.texts) == sorted(from_folder.train.texts)
    assert from_archive.train.fingerprint() == from_folder.train.fingerprint()


@pytest.mark.parametrize(
    "write", [write_csv, write_jsonl, lambda p: write_jsonl(p, label_style="number")]
)
def test_reads_csv_and_json_lines_with_an_80_20_split(tmp_path, write) -> None:
    suffix = ".csv" if write is write_csv else ".jsonl"
    dataset = load_dataset(write(tmp_path / f"reviews{suffix}"))
    assert len(dataset.train.texts) == int(ALL * 0.8)
    assert len(dataset.test.texts) == ALL - int(ALL * 0.8)
    labeled = load_labeled(tmp_path / f"reviews{suffix}")  # every review, for evaluation
    assert dict(zip(labeled.texts, labeled.labels, strict=True)) == {
        **{t: 1 for t in POSITIVE},
        **{t: 0 for t in NEGATIVE},
    }


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("r.csv", "text,label\nhi,positive\n", "columns review,sentiment"),
        ("r.csv", "review,sentiment\nhi,maybe\n", "r.csv:2: label 'maybe'"),
        ("r.csv", "review,sentiment\nhi,positive\n  ,negative\n", "r.csv:3: the review is empty"),
        ("r.csv", "sentiment,review\npositive\n", "r.csv:2: the review is empty"),
        ("r.jsonl", '{"text": " ", "label": "positive"}\n', "r.jsonl:1: the review is empty"),
        ("r.jsonl", '{"text": "hi", "label": "positive"}\nnot json\n', "r.jsonl:2: not JSON"),
        ("r.jsonl", '["hi", 1]\n', 'r.jsonl:1: expected an object with "text"'),
        ("r.jsonl", "", "no labeled reviews"),
        ("r.tar.gz", "not a tarball", "not a readable tar archive"),
        ("r.csv", f"review,sentiment\n{'x' * 200_000},positive\n", "r.csv: not CSV after line 1"),
        ("r.parquet", "x", "unknown data shape"),
    ],
)
def test_bad_files_get_a_clear_error(tmp_path, name, content, message) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_dataset(path)


def test_missing_path_and_empty_folder_are_errors(tmp_path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_dataset(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="no aclImdb/train"):
        load_dataset(tmp_path)


def test_an_official_folder_without_test_reviews_is_an_error(tmp_path) -> None:
    folder = write_imdb_folder(tmp_path)
    for review in (folder / "test").rglob("*.txt"):
        review.unlink()
    for load in (load_dataset, load_labeled):
        with pytest.raises(DataError) as raised:
            load(folder)
        assert str(raised.value) == f"{folder}: no aclImdb/test/{{pos,neg}}/*.txt reviews found"


def test_an_archive_damaged_in_its_header_is_one_line(tmp_path) -> None:
    archive = tmp_path / "aclImdb_v1.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(write_imdb_folder(tmp_path / "src"), arcname="aclImdb")
    archive.write_bytes(b"\0" + archive.read_bytes()[1:])  # the gzip magic number, broken
    with pytest.raises(DataError) as raised:
        load_dataset(archive)
    assert str(raised.value) == f"{archive}: not a readable tar archive (not a gzip file)"


@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_an_archive_damaged_in_the_middle_is_an_error_not_half_the_reviews(tmp_path, mode):
    """tarfile reads a member header it cannot parse as the archive's end, and gzip checks its
    checksum at the stream's end only."""
    archive = tmp_path / ("aclImdb_v1.tar" + mode[2:].replace("gz", ".gz"))
    with tarfile.open(archive, mode) as tar:
        tar.add(write_imdb_folder(tmp_path / "src"), arcname="aclImdb")
    load_dataset(archive)
    content = bytearray(archive.read_bytes())
    middle = len(content) // 2 // 512 * 512  # a block boundary: in a plain tar, some header
    for i in range(middle, middle + 512):
        content[i] ^= 0x5A
    archive.write_bytes(bytes(content))
    with pytest.raises(DataError, match="not a readable tar archive"):
        load_dataset(archive)


def test_invalid_utf8_is_an_error(tmp_path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(b"review,sentiment\n\xff\xfe,positive\n")
    with pytest.raises(DataError, match="not UTF-8"):
        load_dataset(path)


def test_a_given_path_is_used_as_is(tmp_path) -> None:
    assert resolve_data(str(tmp_path / "x.csv"), tmp_path) == tmp_path / "x.csv"


def test_a_download_that_fails_its_checksum_is_discarded(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(
        data.urllib.request, "urlretrieve", lambda url, dest: dest.write_bytes(b"tampered")
    )
    with pytest.raises(DataError, match="sha256"):
        resolve_data(None, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_verified_download_is_kept_and_reused(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(data, "IMDB_SHA256", data.hashlib.sha256(b"archive").hexdigest())
    calls = []

    def fetch(url, dest):
        calls.append(url)
        dest.write_bytes(b"archive")

    monkeypatch.setattr(data.urllib.request, "urlretrieve", fetch)
    first = resolve_data(None, tmp_path)
    assert first.read_bytes() == b"archive" and first.name == "aclImdb_v1.tar.gz"
    assert resolve_data(None, tmp_path) == first
    assert calls == [data.IMDB_URL]


def test_the_url_files_give_each_review_its_movie(tmp_path) -> None:
    from tests.factories import movie_of

    dataset = load_dataset(write_imdb_folder(tmp_path, urls=True))
    by_text = dict(zip(dataset.train.texts, dataset.train.groups, strict=True))
    assert by_text[POSITIVE[3]] == movie_of("train", "pos", 3)
    assert by_text[NEGATIVE[0]] == movie_of("train", "neg", 0)
    assert len(set(dataset.test.groups)) == ALL // 2


def test_an_extras_archive_beside_a_labeled_archive_gives_the_movies(tmp_path) -> None:
    folder = write_imdb_folder(tmp_path / "src", urls=True)
    labeled, extras = tmp_path / "aclImdb_v1_labeled.tar.gz", tmp_path / data.EXTRAS_ARCHIVE
    with tarfile.open(labeled, "w:gz") as tar:
        for split in ("train", "test"):
            for polarity in ("pos", "neg"):
                tar.add(folder / split / polarity, arcname=f"aclImdb/{split}/{polarity}")
    assert load_dataset(labeled).train.groups == []  # no movies known: a random split
    with tarfile.open(extras, "w:gz") as tar:
        for url_file in folder.glob("*/urls_*.txt"):
            tar.add(url_file, arcname=f"aclImdb/{url_file.relative_to(folder)}")
    assert load_dataset(labeled).train.groups == load_dataset(folder).train.groups != []


def test_url_files_beside_a_folder_and_a_review_whose_line_is_missing(tmp_path) -> None:
    """The extras archive serves a folder as it serves an archive; a review whose URL line is
    missing is a movie of its own, and the others keep theirs."""
    source = write_imdb_folder(tmp_path / "src", urls=True)
    folder = write_imdb_folder(tmp_path / "data" / "aclImdb")
    with tarfile.open(folder.parent / data.EXTRAS_ARCHIVE, "w:gz") as tar:
        for url_file in source.glob("*/urls_*.txt"):
            tar.add(url_file, arcname=f"aclImdb/{url_file.relative_to(source)}")
    assert load_dataset(folder).train.groups == load_dataset(source).train.groups != []
    before = load_dataset(source).train.groups
    urls = source / "train" / "urls_pos.txt"
    urls.write_text("".join(urls.read_text().splitlines(keepends=True)[:-1]))
    after = load_dataset(source).train.groups
    changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert len(changed) == 1 and changed[0][1].startswith("review ")


@pytest.mark.parametrize("write", [write_csv, write_jsonl])
def test_files_that_start_with_a_byte_order_mark_are_read(tmp_path, write) -> None:
    suffix = ".csv" if write is write_csv else ".jsonl"
    path = write(tmp_path / f"reviews{suffix}")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert len(load_labeled(path).texts) == ALL


def test_validation_holds_out_whole_movies(tmp_path) -> None:
    train = load_dataset(write_imdb_folder(tmp_path, urls=True)).train
    for seed in range(20):
        fit, validation = train.split_validation(0.25, seed)
        assert not set(fit.groups) & set(validation.groups)
        assert len(validation.texts) == 4  # two whole movies of two reviews each
        assert sorted(fit.texts + validation.texts) == sorted(train.texts)
    splits = {tuple(train.split_validation(0.25, seed)[1].groups) for seed in range(20)}
    assert len(splits) > 1  # the seed chooses the movies


def test_without_movies_validation_is_a_random_split(tmp_path) -> None:
    train = load_dataset(write_imdb_folder(tmp_path)).train
    assert train.groups == []
    fit, validation = train.split_validation(0.25, 1)
    assert (len(fit.texts), len(validation.texts)) == (ALL - 3, 3)
    assert sorted(fit.texts + validation.texts) == sorted(train.texts)


def test_without_movies_the_copies_of_a_text_stay_on_one_side() -> None:
    texts = [f"review {i}" for i in range(10)] * 3  # each text three times, as in a user's CSV
    train = Split(texts, [i % 2 for i in range(30)])
    for seed in range(20):
        fit, validation = train.split_validation(0.2, seed)
        assert not set(fit.texts) & set(validation.texts)
        assert len(validation.texts) == 6  # two texts, with their copies
        assert sorted(fit.texts + validation.texts) == sorted(texts)


def test_unlabeled_reviews_leave_out_test_texts_and_repeats(tmp_path) -> None:
    from tests.factories import UNLABELED

    folder = write_imdb_folder(tmp_path, unlabeled=True)
    dataset = load_dataset(folder)
    assert len(dataset.train.texts) == ALL  # the unlabeled reviews are not training examples
    assert data.unlabeled_path(folder) == folder
    assert data.load_unlabeled(folder, exclude=dataset.test.texts) == UNLABELED
    assert len(data.load_unlabeled(folder)) == len(UNLABELED) + 1


def test_the_unlabeled_archive_is_found_beside_the_data(tmp_path) -> None:
    labeled = write_csv(tmp_path / "reviews.csv")
    assert data.unlabeled_path(labeled) is None
    folder = write_imdb_folder(tmp_path / "src", unlabeled=True)
    with tarfile.open(tmp_path / data.UNSUP_ARCHIVE, "w:gz") as tar:
        tar.add(folder / "train" / "unsup", arcname="aclImdb/train/unsup")
    assert data.unlabeled_path(labeled) == tmp_path / data.UNSUP_ARCHIVE
    assert len(data.load_unlabeled(tmp_path / data.UNSUP_ARCHIVE)) == 5
    with pytest.raises(DataError, match="no aclImdb/train/unsup"):
        data.load_unlabeled(write_imdb_folder(tmp_path / "labeled-only"))
