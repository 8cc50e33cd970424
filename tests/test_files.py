"""Every file is written whole or not at all, and a full disk is one line naming the file."""

from __future__ import annotations

import ast
import errno
import io
import os
from pathlib import Path

import pytest
import torch

import safr_lightning
from safr_lightning import files
from safr_lightning.checkpoint_io import AtomicCheckpointIO
from safr_lightning.files import DiskFull, atomic_path, free_space, write_bytes_atomic, write_text_atomic

PACKAGE = Path(safr_lightning.__file__).parent


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob(f"*{files.TMP_MARK}"))


def test_a_write_that_fails_midway_keeps_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    write_text_atomic(target, '{"status": "ok"}\n')

    class Boom(Exception):
        pass

    with pytest.raises(Boom), atomic_path(target) as tmp:
        tmp.write_text('{"status": "runn')  # half a file
        raise Boom
    assert target.read_text() == '{"status": "ok"}\n'
    assert leftovers(tmp_path) == []


def test_the_temporary_file_lives_beside_the_target(tmp_path: Path) -> None:
    seen: list[Path] = []
    with atomic_path(tmp_path / "sub" / "a.bin") as tmp:
        seen.append(tmp)
        tmp.write_bytes(b"x")
    assert seen[0].parent == tmp_path / "sub" and seen[0].name.startswith(".a.bin.")
    assert (tmp_path / "sub" / "a.bin").read_bytes() == b"x"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG])
def test_a_full_disk_is_one_line_naming_the_file_and_the_space_left(
    code: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "checkpoints" / "last.ckpt"
    write_bytes_atomic(target, b"old")

    def full(fd: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(DiskFull) as caught:
        write_bytes_atomic(target, b"new" * 1000)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"cannot write {target}: {os.strerror(code)} (")
    assert " free on " in message
    assert target.read_bytes() == b"old" and leftovers(tmp_path) == []


def test_another_os_error_is_not_called_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(fd: int) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(files.os, "fsync", denied)
    with pytest.raises(PermissionError):
        write_text_atomic(tmp_path / "a.txt", "x")
    assert leftovers(tmp_path) == []


def test_free_space_names_the_mount_point_of_a_path_not_yet_made(tmp_path: Path) -> None:
    text = free_space(tmp_path / "not" / "yet" / "made.json")
    assert text.endswith(f"free on {Path(os.path.realpath(tmp_path)).anchor}") or " free on /" in text


def test_checkpoints_are_written_whole_beside_their_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "checkpoints" / "last.ckpt"
    io_plugin = AtomicCheckpointIO()
    io_plugin.save_checkpoint({"epoch": 1, "state_dict": {"w": torch.ones(3)}}, target)
    before = target.read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(DiskFull, match=r"cannot write .*last.ckpt: No space left on device"):
        io_plugin.save_checkpoint({"epoch": 2, "state_dict": {"w": torch.zeros(1000)}}, target)
    assert target.read_bytes() == before  # the previous epoch's checkpoint, whole
    assert torch.load(io.BytesIO(before), weights_only=True)["epoch"] == 1
    assert leftovers(tmp_path) == []


# -- no other module opens a file for writing ------------------------------------------------------

# Calls that write a file under a name of their choosing. Through files.py they are atomic; anywhere
# else a crash or a full disk could leave half a file under its final name.
WRITING_CALLS = {"write_text", "write_bytes", "savefig", "save", "dump", "to_csv", "to_parquet", "replace", "rename"}
WRITE_MODES = ("w", "a", "x", "+")
# Where writing is done on purpose, each for its own reason.
ALLOWED = {
    "files.py": "the atomic writer itself",
    "rundir.py": "the lock: a temporary file hard-linked into place (os.link fails if a lock exists)",
    "gpu_slots.py": "an empty file opened only to flock it, never written",
    "checkpoint_io.py": "torch.save into memory; the bytes go through files.write_bytes_atomic",
    "plots/style.py": "savefig into the temporary name files.atomic_path hands out",
}


def _writes(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name == "open":
            modes = [a for a in node.args[1:2]] + [k.value for k in node.keywords if k.arg == "mode"]
            if any(isinstance(m, ast.Constant) and any(c in str(m.value) for c in WRITE_MODES) for m in modes):
                found.append((node.lineno, "open(..., write mode)"))
        elif name in WRITING_CALLS:
            owner = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
            if name == "save" and owner not in ("torch", "OmegaConf"):
                continue  # run.save (W&B uploads a file it already has), workspace.save (a server call)
            if name == "dump" and owner not in ("json", "yaml", "pickle"):
                continue
            if name in ("replace", "rename") and owner not in ("os", "shutil"):
                continue  # str.replace, Path.with_name...
            found.append((node.lineno, f"{owner + '.' if owner else ''}{name}(...)"))
    return found


def test_no_module_writes_a_file_except_through_the_atomic_writer() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative in ALLOWED:
            continue
        for line, call in _writes(ast.parse(path.read_text())):
            offenders.append(f"{relative}:{line}: {call}")
    assert offenders == []


def test_the_write_scan_finds_each_kind_of_write() -> None:
    """The scan above can fail: each way of writing a file is seen."""
    source = "\n".join(
        [
            "path.write_text('x')",
            "open(p, 'w')",
            "open(p, mode='ab')",
            "torch.save(obj, p)",
            "OmegaConf.save(cfg, p)",
            "json.dump(obj, handle)",
            "fig.savefig(p)",
            "os.replace(a, b)",
            "open(p)",  # reading: fine
            "name.replace('a', 'b')",  # a string: fine
            "run.save(p)",  # W&B: fine
        ]
    )
    assert [line for line, _ in _writes(ast.parse(source))] == [1, 2, 3, 4, 5, 6, 7, 8]


def test_errors_cross_a_process_pool_whole() -> None:
    """joblib's workers send exceptions back pickled: a job's one-line error must survive it."""
    import pickle

    from safr_lightning.cli import UserErrorExit
    from safr_lightning.errors import RunInterrupted

    full = pickle.loads(pickle.dumps(DiskFull("/x/last.ckpt", OSError(errno.ENOSPC, "No space left on device"))))
    assert isinstance(full, DiskFull) and str(full).startswith("cannot write /x/last.ckpt: No space left on device (")
    stop = pickle.loads(pickle.dumps(UserErrorExit(RunInterrupted("interrupted by SIGTERM", 143))))
    assert stop.code == 143 and str(stop.error) == "interrupted by SIGTERM" and stop.error.exit_code == 143
