"""The word-level vocabulary (``tokenizers`` WordLevel model), as in the paper's code.

Whitespace split, optional lower-casing and removal of IMDB's ``<br />``, vocabulary from the
training split only with a minimum frequency; ``<pad>`` = 0 and ``<unk>`` = 1. The whole pipeline
lives in the tokenizer's JSON, which travels inside every checkpoint, so a restored model encodes
new text exactly as it saw its training data.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel
from tokenizers.trainers import WordLevelTrainer

from safr_lightning.data.special_tokens import PAD_ID, PAD_TOKEN, UNK_ID, UNK_TOKEN

_HTML_BREAK = Regex(r"<br\s*/?>")


def build_tokenizer(
    texts: Iterable[str],
    *,
    min_freq: int = 2,
    lowercase: bool = True,
    strip_html_breaks: bool = False,
    max_len: int | None = None,
) -> Tokenizer:
    """Train a word-level tokenizer on ``texts`` (the training split only)."""
    tokenizer = Tokenizer(WordLevel(unk_token=UNK_TOKEN))
    steps = []
    if strip_html_breaks:
        steps.append(normalizers.Replace(_HTML_BREAK, " "))
    if lowercase:
        steps.append(normalizers.Lowercase())
    if steps:
        tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    # vocab_size: the trainer caps the vocabulary at 30000 words by default; the paper's
    # vocabulary is every training word seen at least `min_freq` times.
    trainer = WordLevelTrainer(
        vocab_size=2**31 - 1, min_frequency=min_freq, special_tokens=[PAD_TOKEN, UNK_TOKEN], show_progress=False
    )
    tokenizer.train_from_iterator(_batched(texts), trainer=trainer)
    if tokenizer.token_to_id(PAD_TOKEN) != PAD_ID or tokenizer.token_to_id(UNK_TOKEN) != UNK_ID:
        raise AssertionError("special tokens must take ids 0 and 1")
    if max_len is not None:
        tokenizer.enable_truncation(max_length=max_len)
    return tokenizer


def _batched(texts: Iterable[str], size: int = 1000) -> Iterator[list[str]]:
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def encode_texts(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids of each text (truncated to the tokenizer's max length), no padding."""
    return [enc.ids for enc in tokenizer.encode_batch(texts, add_special_tokens=False)]


def tokenizer_from_json(data: str) -> Tokenizer:
    return Tokenizer.from_str(data)
