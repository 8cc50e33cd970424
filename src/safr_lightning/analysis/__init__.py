"""What a trained model is asked after training: SRS and deletion faithfulness (``srs``), the
allocation statistics of important tokens and correlated pairs (``allocation``), and the assembly
of a model's figures from them (``figures``; the drawings themselves live in :mod:`safr_lightning.plots`).

The tensor maths these read is in :mod:`safr_lightning.metrics`; nothing here trains.
"""
