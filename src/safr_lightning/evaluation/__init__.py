"""Evaluation over datasets: SRS and deletion faithfulness (DESIGN §7)."""
