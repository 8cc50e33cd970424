"""Run a ``@hydra.main`` entry point so that every user error costs one line, never a traceback.

Hydra reports its own errors (an unknown key, a wrong type, a missing config group option, a bad
override) over several lines plus a hint about ``HYDRA_FULL_ERROR``. :func:`run_cli` asks Hydra to
raise them instead (``HYDRA_FULL_ERROR=1``, Hydra's documented switch) and prints one line::

    error: invalid config: lambda.imp='abc'; allowed: a number

and exits with :data:`EXIT_USER_ERROR`. The same holds for a
:class:`~safr_lightning.errors.SAFRError` raised by the task (bad values, bad data, a NaN loss),
which the task hands out as :class:`UserErrorExit` so that Hydra does not add its own
"Error executing job" line. Anything else is a bug and keeps its full traceback. ``--verbose``
(or ``HYDRA_FULL_ERROR=1`` in the environment) shows the traceback of user errors too.

Shared by every entry point (``train``, ``evaluate``, ``explain``)::

    @hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
    def _main(cfg: DictConfig) -> Any:
        try:
            ...
        except SAFRError as exc:
            raise UserErrorExit(exc) from exc

    def main() -> None:
        run_cli(_main)
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import logging
import os
import re
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

from safr_lightning import _interrupted_while_starting
from safr_lightning.errors import RunInterrupted, SAFRError, Terminated

EXIT_USER_ERROR = 2
VERBOSE_FLAG = "--verbose"
FULL_ERROR_ENV = "HYDRA_FULL_ERROR"

# Schema annotations (config/schema.py writes them as strings) in words.
_TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "str": "a string",
    "int | None": "an integer or null",
    "float | None": "a number or null",
    "str | None": "a string or null",
    "list[float]": "a list of numbers, e.g. [10,30]",
    "list[str]": "a list of strings, e.g. [a,b]",
}


class UserErrorExit(SystemExit):
    """A user error leaving a Hydra task: a ``SystemExit``, so Hydra's ``except Exception`` lets it by.

    :func:`run_cli` prints ``error`` as one line (or re-raises it under ``--verbose``).
    """

    def __init__(self, error: SAFRError) -> None:
        super().__init__(getattr(error, "exit_code", EXIT_USER_ERROR))  # 130/143 for an interrupted run
        self.error = error

    def __reduce__(self) -> tuple[type, tuple[SAFRError]]:  # crosses process pools (joblib) whole
        return type(self), (self.error,)


def run_cli(hydra_main: Callable[[], Any], argv: list[str] | None = None) -> Any:
    """Call ``hydra_main`` (a ``@hydra.main``-decorated function) with user errors as one line.

    ``argv`` defaults to ``sys.argv``; ``--verbose`` is taken out of it before Hydra parses it.
    """
    argv = sys.argv if argv is None else argv
    verbose = VERBOSE_FLAG in argv[1:] or os.environ.get(FULL_ERROR_ENV, "") not in ("", "0")
    argv[1:] = [arg for arg in argv[1:] if arg != VERBOSE_FLAG]
    previous = os.environ.get(FULL_ERROR_ENV)
    os.environ[FULL_ERROR_ENV] = "1"  # Hydra raises instead of printing its multi-line report
    _received.clear()  # a new CLI call (tests call several in one process)
    take_signals()
    try:
        result = hydra_main()
        if received_signal() is not None:  # swallowed on its way up (a bare ``except:`` in a library)
            _exit_interrupted()
        return result
    except UserErrorExit as stop:
        if verbose:
            raise stop.error from None
        if received_signal() is not None and not isinstance(stop.error, RunInterrupted):
            _exit_interrupted()  # the signal surfaced as another error (a data error, say)
        print(f"error: {_one_line(str(stop.error))}", file=sys.stderr, flush=True)
        sys.exit(stop.code)
    except BaseException as exc:
        if isinstance(exc, SystemExit) and (received_signal() is None or isinstance(exc, _Reported)):
            raise
        if verbose:
            raise
        if received_signal() is not None or isinstance(exc, (KeyboardInterrupt, Terminated)):
            # Whatever it surfaced as: a library's cleanup failing as the signal's exception passed
            # through it (OmegaConf's context managers do), a SystemExit from Lightning's teardown.
            _exit_interrupted(exc)
        if not isinstance(exc, Exception):
            raise
        task = getattr(hydra_main, "__wrapped__", None)
        message = user_message(exc, inside_task=_raised_in(exc, task))
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr, flush=True)
        sys.exit(EXIT_USER_ERROR)
    finally:
        _received.clear()  # reported: a later call in this process (a test, a notebook) starts afresh
        if previous is None:
            os.environ.pop(FULL_ERROR_ENV, None)
        else:
            os.environ[FULL_ERROR_ENV] = previous


def run_main(body: Callable[[], int]) -> int:
    """The same one-line rules for the argparse CLIs (aggregate, export, compare, dashboard).

    ``body`` returns the exit code. A :class:`SAFRError` is one line and exit 2, a signal one line and
    130 / 143 whatever it surfaced as, a full disk one line naming the file; a bug keeps its traceback.
    """
    _received.clear()
    take_signals()
    try:
        return body()
    except BaseException as exc:
        if isinstance(exc, SystemExit) and received_signal() is None:
            raise
        if received_signal() is not None or isinstance(exc, (KeyboardInterrupt, Terminated)):
            cause, code = signal_cause(exc)
            print(f"error: interrupted by {cause} (every file written so far is whole)", file=sys.stderr, flush=True)
            return code
        if isinstance(exc, SAFRError):
            print(f"error: {_one_line(str(exc))}", file=sys.stderr, flush=True)
            return EXIT_USER_ERROR
        if isinstance(exc, OSError):  # a missing file, the disk, permissions: not a bug
            where = f"{exc.filename}: " if exc.filename else ""
            print(f"error: {where}{_one_line(exc.strerror or str(exc))}", file=sys.stderr, flush=True)
            return EXIT_USER_ERROR
        raise
    finally:
        _received.clear()


# -- signals ---------------------------------------------------------------------------------------
# A signal is recorded before anything else happens (the handler's first statement), so that the
# top level can report it whatever exception it surfaced as: a library whose ``finally`` fails while
# the signal's exception passes through it (OmegaConf's flag context managers do) turns a SIGTERM into
# an ``AttributeError``, and a library with a bare ``except:`` may swallow it altogether.
_received: list[int] = []


def note_signal(signum: int) -> None:
    """Record that ``signum`` arrived (the first one counts)."""
    if not _received:
        _received.append(signum)


def received_signal() -> int | None:
    """The first SIGINT / SIGTERM this process received since the CLI started, or None."""
    return _received[0] if _received else None


def signal_cause(exc: BaseException | None = None) -> tuple[str, int]:
    """``("Ctrl-C", 130)`` or ``("SIGTERM", 143)``: from the recorded signal, else from ``exc``'s type."""
    signum = received_signal()
    if signum is None:
        signum = signal.SIGINT if isinstance(exc, KeyboardInterrupt) else signal.SIGTERM
    return ("Ctrl-C", 130) if signum == signal.SIGINT else ("SIGTERM", 143)


def raise_received_signal() -> None:
    """Raise a signal that arrived but was swallowed on its way up, before more work is done.

    A library's ``except Exception`` can swallow it once a cleanup turned it into an ordinary error
    (Hydra composes the config twice, the first time inside ``except Exception: return None``).
    Called where a task starts and between a run's stages.
    """
    signum = received_signal()
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    if signum is not None:
        raise Terminated


class _Reported(SystemExit):
    """The exit after the one line was printed."""


def _exit_interrupted(exc: BaseException | None = None) -> None:
    cause, code = signal_cause(exc)
    print(f"error: interrupted by {cause}", file=sys.stderr, flush=True)
    raise _Reported(code)


def _raise_terminated(signum: int, frame: Any) -> None:
    note_signal(signum)
    raise Terminated


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    note_signal(signum)
    raise KeyboardInterrupt


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back while the block runs (recording how a run ended), then raise them.

    A signal that arrives meanwhile is recorded and its exception raised when the block ends, so it
    cannot cut the record short. The handlers are swapped (not the thread's signal mask: any thread
    of the process may receive the signal). Main thread only; elsewhere a no-op. Nested blocks
    defer to the outermost one.
    """
    if threading.current_thread() is not threading.main_thread() or _deferring:
        yield
        return
    arrived: list[int] = []

    def later(signum: int, frame: Any) -> None:
        note_signal(signum)
        arrived.append(signum)

    held = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, later) for signum in held}
    _deferring.append(True)
    try:
        yield
    finally:
        _deferring.clear()
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        if arrived:
            raise KeyboardInterrupt if arrived[0] == signal.SIGINT else Terminated


_deferring: list[bool] = []


def _signal_aware_unraisablehook(unraisable: Any) -> None:
    """A signal's exception raised where Python cannot let it propagate (a generator finalised by the
    garbage collector, a ``__del__``): it is recorded already and the CLI reports it in its one line,
    so Python's "Exception ignored in ..." traceback is left out. Anything else goes to the hook
    that was there before."""
    if isinstance(unraisable.exc_value, (Terminated, KeyboardInterrupt)) and received_signal() is not None:
        return
    _previous_unraisablehook(unraisable)


_previous_unraisablehook: Callable[[Any], None] = sys.unraisablehook


def take_signals() -> None:
    """The imports are done: Ctrl-C raises ``KeyboardInterrupt`` again, SIGTERM :class:`Terminated`.

    Both are recorded first (:func:`received_signal`) and end a CLI with one line (exit 130 / 143)
    wherever they land; a training run installs its own SIGTERM handling for its stages
    (``experiment.run_training``) and restores this one. Only in the main thread (signals can be
    handled nowhere else), and idempotent.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    global _previous_unraisablehook
    if sys.unraisablehook is not _signal_aware_unraisablehook:
        _previous_unraisablehook = sys.unraisablehook
        sys.unraisablehook = _signal_aware_unraisablehook
    if signal.getsignal(signal.SIGINT) in (_interrupted_while_starting, signal.default_int_handler):
        signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
    if signal.getsignal(signal.SIGTERM) in (_interrupted_while_starting, signal.SIG_DFL):
        signal.signal(signal.SIGTERM, _raise_terminated)


def user_message(exc: BaseException, inside_task: bool = False) -> str | None:
    """One line for an error the user can fix, or None for a bug (which keeps its traceback).

    Hydra and OmegaConf errors are the user's only while the config is being composed; raised from
    inside the task (``inside_task``) they are the code's, and only a ``SAFRError`` is the user's.
    """
    if isinstance(exc, SAFRError):
        return _one_line(str(exc))
    if isinstance(exc, HydraException) and isinstance(exc.__cause__, SAFRError):
        # Ours, raised while Hydra instantiated a plugin or target: not "Error in call to target ...".
        return _one_line(str(exc.__cause__))
    hydra_own = isinstance(exc, (HydraException, OmegaConfBaseException))  # MissingConfigException is an IOError
    if isinstance(exc, OSError) and not hydra_own and not inside_task:  # Hydra making the run dir in vain
        return f"cannot write {exc.filename or 'the output dir'}: {exc.strerror or exc}"
    if not inside_task and isinstance(exc, AssertionError) and _passed_through(exc, "config_loader_impl.py"):
        # Hydra applying `a.b=v` where `a` is null: e.g. evaluate's dataset.local_dir without dataset=NAME.
        return (
            f"invalid config: an override sets a key inside an empty group ({_first_line(str(exc))}); "
            "choose the group first, e.g. dataset=local dataset.local_dir=DIR"
        )
    if inside_task or not isinstance(exc, (HydraException, OmegaConfBaseException)):
        return None
    if isinstance(exc, MissingConfigException):
        return _missing_option(exc)
    if isinstance(exc, OverrideParseException):
        reason, *rest = str(exc.message).strip().splitlines() or [""]
        see = f" (see {m.group(0)})" if rest and (m := re.search(r"https?://\S+", rest[0])) else ""
        quote = " (quote a value with spaces or special characters: key='a b c')" if "Lexer" in reason else ""
        return f"invalid override {exc.override!r}: {reason}{see}{quote}"
    cause = exc if isinstance(exc, OmegaConfBaseException) else exc.__cause__
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and cause.full_key:
        return _unknown_key(str(cause.full_key), cause.object_type, str(exc))
    if isinstance(cause, ValidationError) and cause.full_key:
        return _bad_type(cause)
    if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
        return f"invalid config: {cause.full_key}: {_first_line(cause.msg or str(cause))}"
    parts = [_first_line(str(exc)), _first_line(str(cause)) if cause is not None and cause is not exc else ""]
    return "invalid config: " + "; ".join(p for p in parts if p)


def _missing_option(exc: MissingConfigException) -> str:
    missing = str(exc.missing_cfg_file or "")
    if exc.options and "/" in missing:
        group, name = missing.rsplit("/", 1)
        return f"invalid config: {group}={name}; allowed: {' | '.join(sorted(exc.options))}"
    return f"invalid config: {_first_line(str(exc))}"


def _unknown_key(full_key: str, object_type: Any, hydra_message: str) -> str:
    given = re.search(r"use \+(\S+)", hydra_message)
    shown = f" ({given.group(1)})" if given else ""
    parent, _, leaf = full_key.rpartition(".")
    known = [f.name for f in dataclasses.fields(object_type)] if dataclasses.is_dataclass(object_type) else []
    if not known:
        return f"invalid config: unknown key {full_key}{shown}"
    close = difflib.get_close_matches(leaf, known, n=1)
    hint = f"; did you mean {'.'.join(filter(None, [parent, close[0]]))}?" if close else ""
    where = f"in {parent}" if parent else "at the top level"
    return f"invalid config: unknown key {full_key}{shown}; allowed keys {where}: {', '.join(known)}{hint}"


def _bad_type(cause: ValidationError) -> str:
    value = "null" if cause.value is None else repr(cause.value)
    kind = _field_type(cause.object_type, str(cause.key))
    allowed = _TYPE_WORDS.get(kind or "", None) or _first_line(cause.msg or str(cause))
    return f"invalid config: {cause.full_key}={value}; allowed: {allowed}"


def _field_type(object_type: Any, key: str) -> str | None:
    if not dataclasses.is_dataclass(object_type):
        return None
    for f in dataclasses.fields(object_type):
        if f.name == key:
            kind = f.type
            return kind if isinstance(kind, str) else getattr(kind, "__name__", None) or str(kind)
    return None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in text.strip().splitlines() if line.strip())


def _passed_through(exc: BaseException, filename: str) -> bool:
    """Did ``exc`` pass through a file named ``filename`` on its way up?"""
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(filename):
            return True
        tb = tb.tb_next
    return False


def _raised_in(exc: BaseException, function: Any) -> bool:
    """Did ``exc`` pass through a call of ``function`` (the task) on its way up?"""
    code = getattr(function, "__code__", None)
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code is code:
            return True
        tb = tb.tb_next
    return False


def quiet_known_warnings() -> None:
    """Silence warnings that are expected by design here, so the real ones stand out."""
    # Batches are built in-process by one vectorized gather; worker processes would only add IPC.
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*is smaller than the logging interval.*")
    warnings.filterwarnings("ignore", ".*`isinstance.*LeafSpec.*`.*")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
