"""FC1 neuron polysemy from the neuron side: ``python -m safr_lightning.neurons`` (one checkpoint) and
``python -m safr_lightning.neurons.compare`` (several, side by side). The maths is
:mod:`safr_lightning.analysis.neurons`; the drawings :mod:`safr_lightning.plots.neurons`."""
