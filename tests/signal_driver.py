"""Run a CLI and send it a signal at a chosen moment, not after a sleep: deterministic signal tests.

    python tests/signal_driver.py SIGTERM N PATTERN MODULE [ARG ...]

runs ``python -m MODULE ARG ...`` in this process and sends itself SIGTERM (or SIGINT) when a Python
function is called for the N-th time among the calls whose ``caller > callee`` (each written
``file:qualified name``) matches the regular expression PATTERN (empty: every call). The signal's
handler then runs inside that very function, as a signal arriving at that moment would.

``N=0`` sends nothing and prints, on exit, how many matching calls there were (``calls: 12345``);
with ``SIGNAL_DRIVER_MARK=NAME`` in the environment it also prints how many had been made when a
function named NAME was first called (``mark: 678``), to choose moments before it.
"""

from __future__ import annotations

import atexit
import os
import re
import runpy
import signal
import sys


def main() -> None:
    signum = getattr(signal, sys.argv[1])
    target = int(sys.argv[2])
    pattern = re.compile(sys.argv[3]) if sys.argv[3] else None
    module, args = sys.argv[4], sys.argv[5:]
    # Formatting "caller > callee" for millions of calls is slow: a pattern that ends in a plain
    # name is first checked against the callee's bare name.
    name = re.search(r"(?<![\\\[])\b(\w+)$", sys.argv[3]) if pattern is not None else None
    callee_name = name.group(1) if name else None
    mark = os.environ.get("SIGNAL_DRIVER_MARK") or None
    count = 0
    marked: list[int] = []

    def tracer(frame, event, arg):  # sys.settrace calls it (frame, event, arg)
        nonlocal count
        if event != "call":
            return None
        code = frame.f_code
        if mark is not None and not marked and code.co_name == mark:
            marked.append(count)
        if pattern is not None:
            if callee_name is not None and code.co_name != callee_name:
                return None
            back = frame.f_back
            caller = f"{back.f_code.co_filename}:{back.f_code.co_qualname}" if back is not None else ""
            if not pattern.search(f"{caller} > {code.co_filename}:{code.co_qualname}"):
                return None
        count += 1
        if count == target:
            sys.settrace(None)
            os.kill(os.getpid(), signum)
        return None  # no line events: only calls are counted

    def report() -> None:
        print(f"calls: {count}", file=sys.stderr, flush=True)
        if marked:
            print(f"mark: {marked[0]}", file=sys.stderr, flush=True)

    if target == 0:
        atexit.register(report)
    sys.argv = ["-m", *args]  # as `python -m` leaves it while the package is imported
    sys.settrace(tracer)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
