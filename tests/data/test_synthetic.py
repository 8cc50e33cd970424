from __future__ import annotations

from safr_lightning.config import SyntheticConfig
from safr_lightning.data.synthetic import NEGATIVE, NEGATOR, POSITIVE, generate, generate_split


def test_generation_is_deterministic_and_sized() -> None:
    cfg = SyntheticConfig(train_size=50, val_size=10, test_size=20)
    a, b = generate(cfg), generate(cfg)
    assert a == b
    assert [len(a[s]["text"]) for s in ("train", "validation", "test")] == [50, 10, 20]
    assert generate(SyntheticConfig(train_size=50, seed=7))["train"] != a["train"]


def test_rationale_marks_exactly_the_planted_words_and_label_follows_them() -> None:
    cfg = SyntheticConfig(negation_prob=0.3, distractor_prob=0.2)
    data = generate_split(cfg, 300, 0)
    for text, label, marks in zip(data["text"], data["label"], data["rationale"], strict=True):
        words = text.split()
        assert len(words) == len(marks)
        planted = [w for w, m in zip(words, marks, strict=True) if m]
        others = [w for w, m in zip(words, marks, strict=True) if not m]
        assert planted and not set(others) & (set(POSITIVE) | set(NEGATIVE) | {NEGATOR})
        score, negate = 0, False
        for w in planted:
            if w == NEGATOR:
                negate = True
                continue
            polarity = 1 if w in POSITIVE else -1
            score += -polarity if negate else polarity
            negate = False
        assert (score > 0) == (label == 1)
