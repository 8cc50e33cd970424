"""Lightning callbacks: throughput, (later) SRS evaluation and figures."""

from safr_lightning.callbacks.figures import AllocationFigures
from safr_lightning.callbacks.throughput import ThroughputMonitor

__all__ = ["AllocationFigures", "ThroughputMonitor"]
