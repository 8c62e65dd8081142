import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentiment_core.text import Preprocessor, Reading, token_spans, tokenize, unreadable_words


def test_tokenize_lowercases_and_treats_line_breaks_as_spaces() -> None:
    assert tokenize("Great<br />film, DON'T miss it!<br/>10/10") == [
        "great", "film", "don't", "miss", "it", "10", "10",
    ]  # fmt: skip


def test_token_spans_point_into_the_text_as_written() -> None:
    text = "Café<br />naïve—DON'T miss it!! 😀 10/10<BR/>Wow"
    spans = token_spans(text)
    assert [word for word, _, _ in spans] == tokenize(text) == [
        "caf", "na", "ve", "don't", "miss", "it", "10", "10", "wow",
    ]  # fmt: skip
    assert [text[start:end] for _, start, end in spans] == [
        "Caf", "na", "ve", "DON'T", "miss", "it", "10", "10", "Wow",
    ]  # fmt: skip


def test_token_spans_map_back_characters_that_lower_to_two() -> None:
    text = "İstanbul 😀 İİ GOOD"
    spans = token_spans(text)
    assert [word for word, _, _ in spans] == tokenize(text) == ["i", "stanbul", "i", "i", "good"]
    assert [text[start:end] for _, start, end in spans] == ["İ", "stanbul", "İ", "İ", "GOOD"]


@given(st.text(alphabet=st.sampled_from("aZ9' <br/>İıſK.,😀é\n"), max_size=60) | st.text())
def test_token_spans_find_the_words_tokenize_finds_where_they_are(text: str) -> None:
    spans = token_spans(text)
    assert [word for word, _, _ in spans] == tokenize(text)
    for word, start, end in spans:
        assert tokenize(text[start:end]) == [word]


def test_fit_ranks_words_by_frequency_then_alphabet() -> None:
    pre = Preprocessor.fit(["b a c", "a b", "a z"], num_words=4, max_len=5)
    assert pre.vocab == ("a", "b", "c")
    assert pre.num_words == 4


def test_encode_drops_unknown_words_and_keeps_the_last_tokens() -> None:
    pre = Preprocessor(vocab=("a", "b", "c"), max_len=3)
    assert pre.encode(["a x b c a", "zzz"]) == [[2, 3, 1], []]


def test_read_encodes_and_lists_the_words_outside_the_vocabulary_once_each() -> None:
    pre = Preprocessor(vocab=("a", "b", "c"), max_len=3)
    texts = ["a x b c a X y", "zzz zzz", "", "b"]
    texts += ["Привет мир, b!", "这部电影很好", "🎬 !!", "b café"]
    assert pre.read(texts) == [
        Reading([2, 3, 1], 3, 3 / 7, "x y"),
        Reading([], 2, 1.0, "zzz"),
        Reading([], 0, 0.0, ""),
        Reading([2], 0, 0.0, ""),
        Reading([2], 2, 2 / 3, ""),  # words it cannot read are unknown, and not to learn
        Reading([], 1, 1.0, ""),
        Reading([], 0, 0.0, ""),  # no word
        Reading([2], 1, 1 / 2, "caf"),  # read in part: its ASCII piece
    ]
    assert [reading.ids for reading in pre.read(texts)] == pre.encode(texts)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a fine film, don't miss it", 0),
        ("Café crème — naïve 2回目 🎬 !!", 0),  # each has an ASCII piece; a dash, an emoji: no word
        ("नमस्ते दुनिया", 2),  # combining marks stay with their letters
        ("ภาพยนตร์ดีมาก", 1),  # no spaces: one word as written
        ("\u0438\u0306\u043e\u0433\u0430", 1),  # "йога" decomposed: и and a combining breve
        ("м'ясо смачне, д’Артаньян", 3),  # apostrophes inside a word
        ("_Отлично_ movie, Привет_мир", 3),
    ],
)
def test_unreadable_words_are_the_words_as_written_without_an_ascii_piece(text, words) -> None:
    assert unreadable_words(text) == words


def test_pad_left_pads_and_truncates_from_the_left() -> None:
    pre = Preprocessor(vocab=("a", "b"), max_len=4)
    matrix = pre.pad([[1, 2], [2, 1, 2, 1, 2], []])
    assert matrix.tolist() == [[0, 0, 1, 2], [1, 2, 1, 2], [0, 0, 0, 0]]
    assert str(matrix.dtype) == "int32"


def test_pad_right_keeps_tokens_first() -> None:
    pre = Preprocessor(vocab=("a", "b"), max_len=4)
    assert pre.pad([[1, 2], [2, 1, 2, 1, 2]], 3, right=True).tolist() == [[1, 2, 0], [2, 1, 2]]


def test_save_and_load_round_trip(tmp_path) -> None:
    pre = Preprocessor(vocab=("good", "bad"), max_len=7)
    pre.save(tmp_path / "p.json")
    assert Preprocessor.load(tmp_path / "p.json") == pre


def test_load_refuses_an_unknown_scheme(tmp_path) -> None:
    (tmp_path / "p.json").write_text('{"scheme": "other", "max_len": 3, "vocab": []}')
    with pytest.raises(ValueError, match="scheme"):
        Preprocessor.load(tmp_path / "p.json")
