"""Writing files that other processes read: a temporary file per writer in the target
folder (``tempfile.mkstemp``, so two writers never share a name), renamed over the target
when complete and removed when writing fails; an OS error (disk full, no permission) told
in one line with the path and what to do.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from pathlib import Path
from typing import Callable

from osservatorio.exceptions import OsservatorioError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)
# "[Errno 28] No space left on device" in the error of a stage (raised in the kernel)
_DISK_FULL_TEXT = re.compile(r"\[Errno (%s)\]" % "|".join(str(e) for e in DISK_FULL))


class OutputError(OsservatorioError):
    """Outputs could not be written (disk full, permissions, ...): exit code 1, one line."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give: mkstemp's 0600 would hide outputs from other users


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` a temporary file beside ``path``, then rename it to ``path``. Readers
    see the old file or the new one, never a part; the temporary file never stays."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def is_disk_full(error: BaseException | str | None) -> bool:
    """An OSError for a full disk or quota, or the text of one (a stage's error)."""
    if isinstance(error, OSError):
        return error.errno in DISK_FULL
    return bool(error) and bool(_DISK_FULL_TEXT.search(str(error)))


def os_error_message(exc: OSError, folder: Path | None = None) -> str:
    """One line: the path, what went wrong, what to do. ``folder`` is where the writing
    happened (its disk is the one to free); by default the folder of the failing file."""
    where = exc.filename or folder
    if folder is None:
        folder = Path(where).parent if where else Path.cwd()
    code = errno.errorcode.get(exc.errno or 0, "")
    reason = f"{exc.strerror or exc}" + (f" ({code})" if code else "")
    if exc.errno in DISK_FULL:
        todo = f"free space on the disk of {folder} (df -h {folder}) and run again"
    elif exc.errno in NOT_WRITABLE:
        todo = f"make {folder} writable by this user, or work in a copy of the project"
    else:
        todo = f"check {folder} and run again"
    return f"{where}: {reason}; {todo}"


__all__ = ["OutputError", "atomic_write", "atomic_write_text", "is_disk_full", "os_error_message"]
