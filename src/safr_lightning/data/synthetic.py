"""The planted-rationale sentiment task (DESIGN §6): a binary task whose important tokens are known.

Each text is neutral filler words with a few planted polarity words inserted at random places; the
label is the polarity of the planted words. Optionally a planted word of the *opposite* polarity is
negated (``not awful`` counts as positive; both words are rationale), and class-neutral distractor
words are sprinkled in (not rationale). Every text carries a ``rationale`` list, 1 for each planted
word, aligned with its whitespace-separated words. Deterministic for a given config.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SyntheticConfig:
    """The planted-rationale task (DESIGN §6); used when ``dataset.name == synthetic``."""

    train_size: int = 2000
    val_size: int = 500
    test_size: int = 500
    min_words: int = 8
    max_words: int = 24
    min_planted: int = 1
    max_planted: int = 3
    filler_vocab: int = 200
    polarity_vocab: int = 20
    negation_prob: float = 0.0
    distractor_prob: float = 0.0
    seed: int = 1234


POSITIVE = (
    "good great excellent wonderful superb delightful brilliant charming moving lovely "
    "enjoyable fantastic gripping touching witty stunning masterful fresh beautiful memorable"
).split()
NEGATIVE = (
    "bad awful terrible dull boring tedious clumsy lifeless bland dreadful "
    "painful weak mediocre forgettable stale messy pointless annoying ugly tiresome"
).split()
DISTRACTORS = "film movie story plot scene actor director script screen picture".split()
NEGATOR = "not"
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


def filler_words(n: int) -> list[str]:
    """``n`` distinct pronounceable pseudo-words (``bako``, ``tide``...) that carry no polarity."""
    words = []
    for i in range(n):
        syllables = []
        j = i
        for _ in range(2):
            syllables.append(_CONSONANTS[j % len(_CONSONANTS)] + _VOWELS[(j // len(_CONSONANTS)) % len(_VOWELS)])
            j //= len(_CONSONANTS) * len(_VOWELS)
        word = "".join(syllables)
        if j:
            word += str(j)
        words.append(word)
    return words


def polarity_words(n: int) -> tuple[list[str], list[str]]:
    pos = list(POSITIVE[:n]) + [f"pos{i}" for i in range(len(POSITIVE), n)]
    neg = list(NEGATIVE[:n]) + [f"neg{i}" for i in range(len(NEGATIVE), n)]
    return pos, neg


def generate_split(cfg: SyntheticConfig, size: int, split_index: int) -> dict[str, list]:
    """``size`` examples: ``{"text": [...], "label": [...], "rationale": [[0/1 per word], ...]}``."""
    rng = np.random.default_rng([cfg.seed, split_index])
    fillers = filler_words(cfg.filler_vocab)
    pos, neg = polarity_words(cfg.polarity_vocab)
    texts, labels, rationales = [], [], []
    for _ in range(size):
        label = int(rng.integers(2))
        same, opposite = (pos, neg) if label == 1 else (neg, pos)
        n_words = int(rng.integers(cfg.min_words, cfg.max_words + 1))
        # Units, not words: a planted "not awful" is inserted whole and never split by a later insert.
        units: list[tuple[list[str], int]] = []
        for i in rng.integers(len(fillers), size=n_words):
            word = fillers[int(i)]
            if cfg.distractor_prob > 0 and rng.random() < cfg.distractor_prob:
                word = DISTRACTORS[int(rng.integers(len(DISTRACTORS)))]
            units.append(([word], 0))
        n_planted = int(rng.integers(cfg.min_planted, cfg.max_planted + 1))
        for _ in range(n_planted):
            at = int(rng.integers(len(units) + 1))
            if rng.random() < cfg.negation_prob:
                planted = [NEGATOR, opposite[int(rng.integers(len(opposite)))]]
            else:
                planted = [same[int(rng.integers(len(same)))]]
            units.insert(at, (planted, 1))
        words = [w for unit, _ in units for w in unit]
        marks = [mark for unit, mark in units for _ in unit]
        texts.append(" ".join(words))
        labels.append(label)
        rationales.append(marks)
    return {"text": texts, "label": labels, "rationale": rationales}


def generate(cfg: SyntheticConfig) -> dict[str, dict[str, list]]:
    """The three splits, each from its own seeded stream (so sizes can change independently)."""
    sizes = {"train": cfg.train_size, "validation": cfg.val_size, "test": cfg.test_size}
    return {split: generate_split(cfg, size, index) for index, (split, size) in enumerate(sizes.items())}
