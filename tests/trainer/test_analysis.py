import json

from sentiment_core.text import Preprocessor
from trainer.analysis import analyse
from trainer.data import Split


def test_analysis_finds_the_telling_words_and_the_truncation(tmp_path) -> None:
    texts = ["superb film " * 15] * 3 + ["awful film " * 15] * 3 + ["superb film long " * 40]
    labels = [1, 1, 1, 0, 0, 0, 1]
    preprocessor = Preprocessor.fit(texts, num_words=3, max_len=50)  # "film", "superb"
    summary = analyse(Split(texts, labels), preprocessor, tmp_path)
    assert summary["class_balance"] == {"positive": 4, "negative": 3}
    assert summary["tokens"]["max"] == 120
    assert summary["share_truncated"] == 1 / 7  # only the long review keeps over 50 tokens
    assert summary["telling_words"]["positive"][0][0] == "superb"
    assert summary["telling_words"]["negative"][0][0] == "awful"
    assert "film" not in [w for w, _ in summary["telling_words"]["positive"][:2]]
    assert json.loads((tmp_path / "eda.json").read_text()) == summary
    assert (tmp_path / "eda.png").stat().st_size > 0
