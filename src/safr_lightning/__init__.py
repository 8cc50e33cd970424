"""safr-lightning: Superposition-Aware Feature Regularization with PyTorch Lightning."""

import os as _os
import signal as _signal
import sys as _sys

__version__ = "0.1.0"


def _interrupted_while_starting(signum: int, frame: object) -> None:
    # Ctrl-C or SIGTERM while torch, Lightning and Hydra are being imported (seconds): one line.
    cause, code = ("Ctrl-C", 130) if signum == _signal.SIGINT else ("SIGTERM", 143)
    print(f"error: interrupted by {cause} while starting", file=_sys.stderr, flush=True)
    _os._exit(code)


def _is_cli_start() -> bool:
    """Is this import the start of one of the project's CLIs (``python -m safr_lightning.X``, ``safr-X``)?

    Not in a worker process (joblib's loky copies the parent's argv): its parent handles signals.
    """
    import multiprocessing

    first = _sys.argv[0] if _sys.argv else ""
    cli = first == "-m" or _os.path.basename(first).startswith("safr-")
    return cli and multiprocessing.parent_process() is None


# Only for a CLI: a notebook or a test importing the package keeps its own signal handling.
# safr_lightning.cli.take_signals() turns them into exceptions once the CLI starts.
if _is_cli_start():
    if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
        _signal.signal(_signal.SIGINT, _interrupted_while_starting)
    if _signal.getsignal(_signal.SIGTERM) == _signal.SIG_DFL:
        _signal.signal(_signal.SIGTERM, _interrupted_while_starting)
