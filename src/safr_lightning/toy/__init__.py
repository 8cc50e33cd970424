"""The toy model of superposition (Elhage et al. 2022, "ReLU output" model) as a testbed for SAFR.

n sparse features with known importance are squeezed through m < n hidden dimensions. As sparsity
grows, features go from dedicated dimensions to superposition: the ground truth against which the
project's capacity / polysemanticity metrics (:mod:`safr_lightning.metrics.superposition`) and
SAFR's importance-weighted polysemanticity penalty can be checked.

- :mod:`.model`: data, the batched model, the reconstruction loss and SAFR's penalty (pure functions);
- :mod:`.features`: per-feature capacity, norm, polysemanticity and the dedicated-dimension truth;
- :mod:`.train`: seeded, deterministic training of a whole sweep as one batched model;
- :mod:`.config`: the typed config (torch-free); ``python -m safr_lightning.toy`` runs the sweep.
"""
