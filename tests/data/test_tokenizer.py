from __future__ import annotations

from safr_lightning.data.tokenizer import PAD_ID, UNK_ID, build_tokenizer, encode_texts, tokenizer_from_json


def test_special_ids_min_frequency_and_whitespace_split() -> None:
    tok = build_tokenizer(["the film , good", "the film bad", "rare"], min_freq=2)
    vocab = tok.get_vocab()
    assert vocab["<pad>"] == PAD_ID == 0 and vocab["<unk>"] == UNK_ID == 1
    assert {"the", "film"} <= set(vocab) and "rare" not in vocab and "good" not in vocab
    ids = encode_texts(tok, ["the unseen film"])[0]
    assert ids == [vocab["the"], UNK_ID, vocab["film"]]


def test_lowercase_html_breaks_and_truncation() -> None:
    texts = ["Great movie<br />Great fun", "great movie<br/>great fun"]
    tok = build_tokenizer(texts, min_freq=1, lowercase=True, strip_html_breaks=True, max_len=3)
    assert "<br" not in "".join(tok.get_vocab())
    ids = encode_texts(tok, ["GREAT movie<br />great fun"])[0]
    assert len(ids) == 3 and UNK_ID not in ids


def test_tokenizer_survives_json_round_trip() -> None:
    tok = build_tokenizer(["a b c a b c"], min_freq=1, max_len=5)
    again = tokenizer_from_json(tok.to_str())
    assert encode_texts(again, ["c b a z"]) == encode_texts(tok, ["c b a z"])


def test_vocabulary_is_not_capped() -> None:
    texts = [" ".join(f"w{i}" for i in range(40000))] * 2  # 40000 words seen twice each
    assert build_tokenizer(texts, min_freq=2).get_vocab_size() == 40002
