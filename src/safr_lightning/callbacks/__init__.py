"""Lightning callbacks: throughput, SRS evaluation, (later) figures."""

from safr_lightning.callbacks.figures import AllocationFigures
from safr_lightning.callbacks.srs import SRSCallback
from safr_lightning.callbacks.throughput import ThroughputMonitor

__all__ = ["AllocationFigures", "SRSCallback", "ThroughputMonitor"]
