"""Reading a finished (or half-finished) Hydra sweep: its jobs, the ablation table, Figure 3."""
