"""Lightning callbacks: throughput, per-epoch log line, SRS evaluation, figures."""

from safr_lightning.callbacks.epoch_log import EpochLog
from safr_lightning.callbacks.figures import AllocationFigures
from safr_lightning.callbacks.srs import SRSCallback
from safr_lightning.callbacks.throughput import ThroughputMonitor

__all__ = ["AllocationFigures", "EpochLog", "SRSCallback", "ThroughputMonitor"]
