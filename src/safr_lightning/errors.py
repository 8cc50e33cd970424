"""Errors meant for the person at the keyboard.

A :class:`SAFRError` is printed as one line (``error: ...``) and ends the process with exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Any


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (at most ``limit`` characters), else its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


class SAFRError(Exception):
    """A problem with the user's input or environment, explained in one sentence."""


class ConfigError(SAFRError):
    """A config value outside what the project accepts."""


class DataError(SAFRError):
    """Missing, unreadable or malformed data, or no way to reach it."""


class RunDirTaken(SAFRError):
    """The run dir belongs to another run (in use now, or finished with another config).

    Nothing is written into it: its owner's files stay as they are.
    """


class RunInterrupted(SAFRError):
    """Stopped from outside (Ctrl-C, or SIGTERM: a pre-empted or cancelled job) before it finished.

    ``exit_code`` follows the shell's convention: 128 + the signal's number.
    """

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def __reduce__(self) -> tuple[type, tuple[str, int]]:  # crosses process pools (joblib) whole
        return type(self), (str(self), self.exit_code)


class NonFiniteLossError(SAFRError):
    """The loss became NaN or infinite during training."""

    def __init__(self, step: int, terms: dict[str, float]) -> None:
        bad = [name for name, value in terms.items() if not _finite(value)]
        shown = ", ".join(f"{name}={value:.4g}" for name, value in terms.items())
        where = ", ".join(bad) or "loss"
        if bad == ["loss"]:  # every term finite, their λ-weighted sum not
            where = "loss (the λ-weighted sum of finite terms overflowed: lower lambda.*)"
        if step == 0:  # before any update: nothing diverged, the setup itself overflows
            hint = "the first forward pass is already non-finite: check vmask.tau, lambda.* and the data"
        else:
            hint = "lower optim.lr or set trainer.gradient_clip_val if training diverged"
        super().__init__(f"non-finite loss at global step {step} in {where} ({shown}); {hint}")
        self.step = step
        self.terms = terms


def _finite(value: float) -> bool:
    return value == value and value not in (float("inf"), float("-inf"))


class Terminated(BaseException):
    """SIGTERM outside a run's own stages (starting, between sweep jobs, evaluate, aggregate).

    A ``BaseException``, like ``KeyboardInterrupt``: no ``except Exception`` swallows it.
    """


def instantiate_checked(entry: Any, base: type, key: str, **defaults: Any) -> Any:
    """A ``{_target_: ..., ...}`` config entry made into an object of ``base``, or one line saying why not.

    ``key`` names the entry in messages (``callbacks.extra``); ``defaults`` are keyword arguments the
    target accepts and the entry does not set (e.g. a logger's ``save_dir``).
    """
    import inspect

    from hydra.utils import get_class, instantiate

    target = str(entry.get("_target_"))
    try:
        accepted = inspect.signature(get_class(target)).parameters
        made = instantiate(entry, **{k: v for k, v in defaults.items() if k in accepted and k not in entry})
    except Exception as exc:
        raise ConfigError(f"invalid config: {key} {target}: {first_line(exc.__cause__ or exc)}") from None
    if not isinstance(made, base):
        raise ConfigError(f"invalid config: {key} {target} is not a {base.__module__.split('.')[0]} {base.__name__}")
    return made
