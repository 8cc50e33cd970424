"""Single runs side by side: jobs at a time, results in order, and stopped together with the parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from safr_lightning.sweep.children import run_side_by_side
from tests.conftest import REPO, SUBPROCESS_ENV


def sleeper(log: Path, name: object, seconds: float) -> list[str]:
    """A child that logs its start and end times (monotonic clock) and sleeps in between."""
    code = f"import time; t = time.monotonic(); time.sleep({seconds}); open({str(log)!r}, 'a').write(f'{name} {{t}} {{time.monotonic()}}\\n')"  # noqa: E501
    return [sys.executable, "-c", code]


def test_jobs_run_at_most_n_at_a_time_and_results_keep_the_items_order(tmp_path: Path) -> None:
    log = tmp_path / "log"
    finished: list[int] = []

    def finish(item: int, done: subprocess.CompletedProcess) -> str:
        finished.append(item)
        return f"{item}:{done.returncode}"

    out = run_side_by_side(list(range(5)), 2, lambda i: (sleeper(log, i, 0.4), {}), finish)
    assert out == [f"{i}:0" for i in range(5)] and sorted(finished) == list(range(5))
    spans = [tuple(map(float, line.split()[1:])) for line in log.read_text().splitlines()]
    assert len(spans) == 5
    # At no moment were more than 2 children alive, and at some moment 2 were.
    alive = [sum(s <= t < e for s, e in spans) for t, _ in spans]
    assert max(alive) == 2


def test_a_childs_extra_environment_reaches_it(tmp_path: Path) -> None:
    code = "import os, sys; sys.stderr.write(os.environ['OMP_NUM_THREADS'])"
    out = run_side_by_side([0], 1, lambda i: ([sys.executable, "-c", code], {"OMP_NUM_THREADS": "3"}),
                           lambda i, done: done.stderr)  # fmt: skip
    assert out == ["3"]


DRIVER = """
import signal, sys, time
from pathlib import Path
from safr_lightning.cli import run_main
from safr_lightning.sweep.children import run_side_by_side

here = Path(sys.argv[1])
child = '''
import os, signal, sys, time
from pathlib import Path
if sys.argv[2] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
Path(sys.argv[1]).write_text(str(os.getpid()))
time.sleep(120)
'''

def body() -> int:
    run_side_by_side(range(3), 2, lambda i: ([sys.executable, "-c", child, str(here / f"pid{i}"), sys.argv[2]], {}),
                     lambda i, done: i, grace_s=1.0)
    return 0

sys.exit(run_main(body))
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("kind", ["polite", "stubborn"])  # stubborn: ignores SIGTERM, needs the SIGKILL
def test_a_signal_to_the_parent_stops_every_child(tmp_path: Path, kind: str) -> None:
    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent(DRIVER))
    env = {**os.environ, **{k: v for k, v in SUBPROCESS_ENV.items() if v is not None}}
    parent = subprocess.Popen([sys.executable, str(driver), str(tmp_path), kind], cwd=REPO, env=env,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all((tmp_path / f"pid{i}").is_file() for i in (0, 1)):
            time.sleep(0.05)
        time.sleep(0.3)  # the children have passed their signal setup
        pids = [int((tmp_path / f"pid{i}").read_text()) for i in (0, 1)]
        parent.send_signal(signal.SIGTERM)
        code = parent.wait(timeout=30)  # not the children's 120 s
    finally:
        if parent.poll() is None:
            parent.kill()
    assert code == 143 and "interrupted by SIGTERM" in parent.stderr.read()
    assert not any(alive(pid) for pid in pids)
    assert not (tmp_path / "pid2").exists()  # the queued job never started


def test_parallel_children_on_a_gpu_box_each_see_one_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from safr_lightning import gpu_slots
    from safr_lightning.sweep.children import slot_env

    monkeypatch.setattr(gpu_slots, "visible_gpus", lambda: ["3", "5"])
    assert slot_env(0, 1) == {}  # one job keeps what the caller sees
    assert [slot_env(slot, 3)["CUDA_VISIBLE_DEVICES"] for slot in range(3)] == ["3", "5", "3"]
    monkeypatch.setattr(gpu_slots, "visible_gpus", lambda: [])
    assert slot_env(1, 2) == {}  # no GPU: nothing set
