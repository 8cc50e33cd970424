"""safr-lightning: Superposition-Aware Feature Regularization with PyTorch Lightning."""

import os as _os
import signal as _signal
import sys as _sys

__version__ = "0.1.0"


def _interrupted_while_starting(signum: int, frame: object) -> None:
    # Ctrl-C while torch, Lightning and Hydra are being imported (seconds): one line, not a traceback.
    print("error: interrupted by Ctrl-C while starting", file=_sys.stderr, flush=True)
    _os._exit(130)


def _is_cli_start() -> bool:
    """Is this import the start of one of the project's CLIs (``python -m safr_lightning.X``, ``safr-X``)?"""
    first = _sys.argv[0] if _sys.argv else ""
    return first == "-m" or _os.path.basename(first).startswith("safr-")


# Only for a CLI: a notebook or a test importing the package keeps its own Ctrl-C handling.
# safr_lightning.cli.run_cli gives Ctrl-C back to Python (KeyboardInterrupt) once the CLI starts.
if _is_cli_start() and _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
    _signal.signal(_signal.SIGINT, _interrupted_while_starting)
