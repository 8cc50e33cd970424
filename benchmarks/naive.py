"""The naive trainer the speed-ups are measured against: SAFR the way the paper's official code runs it.

Faithful to github.com/chili-lab/SAFR in the ways that cost time: every text is looked up word by
word in a Python dict and padded to ``max_len`` in ``Dataset.__getitem__``; the DataLoader's
default collate stacks the fixed-width rows; the model computes VMASK, attention, FFN and both
regularizers over all ``max_len`` positions, padding included (polysemanticity with an einsum over
the normalized representations, interference of attention with an einsum); Adam with default
settings; ``loss.item()`` and friends every step. Same sizes as the project's model (E=256,
8 heads, F=1024, VMASK hidden 1024), same vocabulary (our tokenizer's normalization, min freq 2),
batch 32. It is a benchmark reference, not part of the package.

    python benchmarks/naive.py --dataset sst2 --data-dir ../shared/data [--batches N]

Prints one JSON line: samples/s, real (non-padding) tokens/s, seconds, peak RSS.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import resource
import time

import numpy as np
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

MAX_LEN = {"sst2": 128, "imdb": 256}


def normalize(text: str) -> str:
    return re.sub(r"<br\s*/?>", " ", text).lower()


def build_vocab(sentences: list[str], min_freq: int = 2) -> dict[str, int]:
    freq: dict[str, int] = {}
    for sentence in sentences:
        for word in sentence.split():
            freq[word] = freq.get(word, 0) + 1
    vocab = {"<PAD>": 0, "<UNK>": 1}
    for word, count in freq.items():
        if count >= min_freq:
            vocab[word] = len(vocab)
    return vocab


class SentimentDataset(Dataset):
    def __init__(self, sentences: list[str], labels: list[int], vocab: dict[str, int], max_len: int) -> None:
        self.sentences, self.labels, self.vocab, self.max_len = sentences, labels, vocab, max_len

    def __len__(self) -> int:
        return len(self.sentences)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        indices = [self.vocab.get(word, self.vocab["<UNK>"]) for word in self.sentences[idx].split()]
        if len(indices) < self.max_len:
            indices += [self.vocab["<PAD>"]] * (self.max_len - len(indices))
        else:
            indices = indices[: self.max_len]
        return torch.tensor(indices), torch.tensor(self.labels[idx])


class NaiveSAFR(nn.Module):
    """The official CustomTransformer's computation, one layer, losses over every position."""

    def __init__(self, vocab_size: int, max_len: int, d: int = 256, heads: int = 8, ff: int = 1024) -> None:
        super().__init__()
        self.d, self.heads = d, heads
        self.embedding = nn.Embedding(vocab_size, d)
        self.vmask_hidden = nn.Linear(d, 1024)
        self.vmask_out = nn.Linear(1024, 2)
        pe = torch.zeros(max_len, d)
        pos = torch.arange(max_len, dtype=torch.float)[:, None]
        div = torch.exp(torch.arange(0, d, 2).float() * (-math.log(10000.0) / d))
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
        self.register_buffer("pe", pe[None])
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.fc1, self.fc2 = nn.Linear(d, ff), nn.Linear(ff, d)
        self.fc = nn.Linear(d, 2)
        self.dropout = nn.Dropout(0.1)

    def forward(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, t = src.shape
        mask = (src != 0)[:, None, None, :]
        x = self.embedding(src) * math.sqrt(self.d)
        p = self.vmask_out(torch.tanh(self.vmask_hidden(x)))
        x_vmask = F.gumbel_softmax(p, hard=True, dim=2)[:, :, 1:2] * x
        x = self.dropout(x_vmask + self.pe[:, :t])
        dk = self.d // self.heads
        q, k, v = (f(x).view(b, t, self.heads, dk).transpose(1, 2) for f in (self.q, self.k, self.v))
        scores = (q @ k.transpose(-2, -1) / math.sqrt(dk)).masked_fill(mask == 0, -1e9)
        attn = torch.softmax(scores, dim=-1)
        ctx = (attn @ v).transpose(1, 2).contiguous().view(b, t, self.d)
        x = self.norm1(x + self.dropout(self.o(ctx)))
        x = self.norm2(x + self.dropout(self.fc2(F.relu(self.fc1(x)))))
        logits = self.fc(x.mean(dim=1))
        # regularization.polysemanticity_loss
        x_norm = x_vmask / (1e-5 + torch.linalg.norm(x_vmask, dim=-1, keepdim=True))
        interference = torch.einsum("ble,bme->blm", x_norm, x_vmask)
        interference = interference.masked_fill(torch.eye(t, dtype=torch.bool)[None], 0)
        poly = (torch.linalg.norm(interference, dim=-1) / np.sqrt(self.d)).mean()
        # regularization.correlation_interference_loss
        correlation = attn / attn.sum(dim=-1, keepdim=True)
        inter_a = torch.einsum("bhij,bhkj->bhik", attn, attn)
        inter_a = inter_a.masked_fill(torch.eye(t, dtype=torch.bool)[None, None], 0)
        inter = (correlation * (1 - inter_a)).mean()
        return logits, poly, inter


def load(data_dir: str, dataset: str) -> tuple[list[str], list[int]]:
    table = pq.read_table(f"{data_dir}/{dataset}/train.parquet")
    texts = [normalize(t) for t in table.column("text").to_pylist()]
    return texts, table.column("label").to_pylist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=list(MAX_LEN), default="sst2")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--batches", type=int, default=0, help="train on this many batches (0: one epoch)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    texts, labels = load(args.data_dir, args.dataset)
    if args.dataset == "imdb":  # the project's 20k/5k carve; the naive code trains on the same amount
        texts, labels = texts[:20000], labels[:20000]
    vocab = build_vocab(texts)
    max_len = MAX_LEN[args.dataset]
    loader = DataLoader(SentimentDataset(texts, labels, vocab, max_len), batch_size=32, shuffle=True)
    model = NaiveSAFR(len(vocab), max_len)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    criterion = nn.CrossEntropyLoss()
    model.train()
    samples = tokens = steps = 0
    totals = {"loss": 0.0, "ce": 0.0, "imp": 0.0, "inter": 0.0, "correct": 0}
    start = time.perf_counter()
    for inputs, target in loader:
        optimizer.zero_grad()
        logits, poly, inter = model(inputs)
        ce = criterion(logits, target)
        loss = ce + 0.1 * poly + 0.1 * inter
        loss.backward()
        optimizer.step()
        totals["loss"] += loss.item()
        totals["ce"] += ce.item()
        totals["imp"] += poly.item()
        totals["inter"] += inter.item()
        totals["correct"] += (logits.argmax(1) == target).sum().item()
        samples += len(target)
        tokens += int((inputs != 0).sum())
        steps += 1
        if args.batches and steps >= args.batches:
            break
    seconds = time.perf_counter() - start
    peak_rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({
        "impl": "naive", "dataset": args.dataset, "steps": steps, "samples": samples, "tokens": tokens,
        "seconds": seconds, "samples_per_s": samples / seconds, "tokens_per_s": tokens / seconds,
        "epoch_fraction": samples / len(texts), "vocab": len(vocab), "peak_rss_gb": peak_rss_gb,
        "threads": torch.get_num_threads(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
