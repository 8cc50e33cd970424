"""safr-lightning: Superposition-Aware Feature Regularization with PyTorch Lightning."""

import os

# Back large CPU tensors with transparent huge pages. Every training step allocates the dense
# embedding gradient afresh (86 MB for IMDB's vocabulary), and faulting it in 4 KB pages cost
# more than the zeroing itself (71 ms vs 18 ms measured). Read by torch at its first allocation,
# so it only takes effect when this package is imported before torch; an explicit setting wins.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

__version__ = "0.1.0"
