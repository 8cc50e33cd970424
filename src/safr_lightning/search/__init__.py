"""Multi-objective search over λ (``hparams_search=pareto``): the space, the study, the front, the report."""
