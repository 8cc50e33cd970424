"""Every file the project writes is written whole or not at all.

A file is written to a temporary name *beside* its final name (the same directory, hence the same
file system), flushed to disk (``fsync``), then renamed over the final name (``os.replace``, atomic
on POSIX) and the directory entry is flushed too. A reader, a second aggregation running alongside,
a crash, a ``kill -9`` or a full disk therefore never leaves half a file under a final name: the
old file (or none) stays until the new one is complete.

A full disk (``ENOSPC``, a quota, a file-size limit) while writing is :class:`DiskFull`: one line
naming the file and the space left, and the temporary file is removed again, which gives its blocks
back (so that a short failure record can usually still be written).

``tests/test_files.py`` checks that no other module of the package opens a file for writing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from safr_lightning.errors import SAFRError

# What a write that ran out of room raises: no space, a quota, RLIMIT_FSIZE / the file system's limit.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
TMP_MARK = ".tmp"


class DiskFull(SAFRError):
    """No room to write ``path``; the message names it and the space left where it would have gone."""

    def __init__(self, path: Path | str, cause: OSError | str) -> None:
        self.path = Path(path)
        if isinstance(cause, str):  # unpickled: the message as it was made
            super().__init__(cause)
            return
        super().__init__(
            f"cannot write {self.path}: {cause.strerror or cause} ({free_space(self.path)}); "
            "free some space (or choose another paths.output_dir) and run it again"
        )

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # crosses process pools (joblib) whole
        return type(self), (str(self.path), str(self))


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def free_space(path: Path) -> str:
    """``"12.3 MB free on /mnt/x"`` for the file system holding ``path`` (or its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return "free space unknown"
    return f"{_size(free)} free on {_mount_point(probe)}"


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


def _mount_point(path: Path) -> Path:
    path = path.resolve()
    while not os.path.ismount(path) and path.parent != path:
        path = path.parent
    return path


def temporary_name(path: Path) -> Path:
    """The name ``path`` is written under before it is complete: hidden, beside it, per process."""
    return path.with_name(f".{path.name}.{os.getpid()}{TMP_MARK}")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error it becomes ``path``.

    For writers that want a file name (``torch.save``, ``Figure.savefig``). On any error the
    temporary file is removed; a full disk is re-raised as :class:`DiskFull` naming ``path``.
    """
    path = Path(path)
    tmp = temporary_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if is_disk_full(exc):
            raise DiskFull(path, exc) from exc  # type: ignore[arg-type]
        raise


def remove_stale_temporaries(directory: Path, recursive: bool = True) -> list[Path]:
    """Remove the temporary files a killed writer (``kill -9``, a power cut) left in ``directory``.

    Only files named as :func:`temporary_name` names them whose process is gone (and the
    ``results.json.tmp`` older versions used); a live writer's file stays. The process ids are this
    host's: call it only where nobody on another host writes (a run dir held by
    ``rundir.hold_run_dir``, or the top of a sweep folder for its tables).
    """
    glob = directory.rglob if recursive else directory.glob
    removed = []
    for path in sorted(glob(f".*{TMP_MARK}")) + sorted(glob(f"*.json{TMP_MARK}")):
        pid = path.name.removesuffix(TMP_MARK).rsplit(".", 1)[-1]
        if pid.isdigit() and _alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_bytes_atomic(path: str | Path, data: bytes | memoryview) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable; some file systems cannot fsync a directory, which is fine."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
