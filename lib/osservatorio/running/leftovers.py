"""What a killed run leaves behind, and how it is found and removed.

Every temporary thing a run makes carries its owner in its name, ``@<host>.<pid>``: the
run folder ``outputs/<theme>/.tmp-<run-id>@<host>.<pid>``, the temporary ``latest`` link
``outputs/<theme>/.latest.<run-id>@<host>.<pid>`` and the kernel's connection file
``<jupyter runtime dir>/kernel-osservatorio-<uuid>@<host>.<pid>.json`` (it holds the
kernel's key). A leftover is stale when its owner is a process of this host that is no
longer alive; a live run's leftovers are never touched, nor those of another host (an
``outputs/`` or home folder shared between machines). Folders of older versions, without
an owner, are stale after ``UNOWNED_STALE_S``.

Runs and batches remove their theme's stale leftovers when they start;
``osservatorio clean`` lists and removes them all.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from osservatorio import paths

TMP_PREFIX = ".tmp-"
LATEST_TMP_PREFIX = ".latest."
KERNEL_FILE_PREFIX = "kernel-osservatorio-"
UNOWNED_STALE_S = 3600
_OWNER = re.compile(r"@(?P<host>[^@/]+)\.(?P<pid>\d+)$")
_IPC_SUFFIX = re.compile(r"\.ipc-\d+$")
# A Unix socket's path must fit in sun_path (108 bytes on Linux, with its NUL).
MAX_SOCKET_PATH = 100


def owner_tag() -> str:
    """``@<host>.<pid>`` of this process, appended to the names of its temporary things."""
    return f"@{socket.gethostname()}.{os.getpid()}"


def owner_of(name: str) -> tuple[str, int] | None:
    """(host, pid) from a name made with ``owner_tag`` (a ``.json`` suffix, or the
    ``.ipc-<n>`` of a kernel's socket file, ignored)."""
    m = _OWNER.search(_IPC_SUFFIX.sub("", name.removesuffix(".json")))
    return (m["host"], int(m["pid"])) if m else None


def is_alive(pid: int) -> bool:
    """The process exists on this host and has not exited (a zombie counts as dead)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's live process
        return True


def is_stale(path: Path, now: float | None = None) -> bool:
    """The owner of ``path`` is a dead process of this host (or, with no owner in the
    name, ``path`` has not changed for ``UNOWNED_STALE_S``)."""
    owner = owner_of(path.name)
    if owner is None:
        try:
            return (now or time.time()) - path.lstat().st_mtime > UNOWNED_STALE_S
        except OSError:
            return False
    host, pid = owner
    return host == socket.gethostname() and not is_alive(pid)


@dataclass(frozen=True)
class Leftover:
    path: Path
    kind: str  # "run folder" | "latest link" | "kernel connection file"

    def remove(self) -> None:
        if self.path.is_dir() and not self.path.is_symlink():
            shutil.rmtree(self.path)
        else:
            self.path.unlink(missing_ok=True)


def run_leftovers(theme_dir: Path) -> list[Leftover]:
    """Stale temporary run folders and ``latest`` links of one theme's outputs folder."""
    if not theme_dir.is_dir():
        return []
    found = []
    for path in sorted(theme_dir.iterdir()):
        if path.name.startswith(TMP_PREFIX) and path.is_dir() and is_stale(path):
            found.append(Leftover(path, "run folder"))
        elif path.name.startswith(LATEST_TMP_PREFIX) and path.is_symlink() and is_stale(path):
            found.append(Leftover(path, "latest link"))
    return found


def kernel_runtime_dir() -> Path:
    from jupyter_core.paths import jupyter_runtime_dir

    return Path(jupyter_runtime_dir())


def kernel_connection_file() -> Path:
    """Where a run's kernel writes its connection file (with its owner in the name)."""
    import uuid

    folder = kernel_runtime_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # as Jupyter makes it: the files hold keys
    return folder / f"{KERNEL_FILE_PREFIX}{uuid.uuid4().hex[:12]}{owner_tag()}.json"


def kernel_ipc_prefix(connection_file: Path) -> Path | None:
    """Where a run's kernel puts its ZeroMQ sockets, as Unix sockets named
    ``<connection file without .json>.ipc-<n>`` (so the owner is in their names too), or
    None when that path would be too long for a Unix socket (then TCP ports on localhost).

    Unix sockets cannot collide: with TCP, jupyter_client picks free ports by binding and
    releasing them, and two kernels starting at the same moment (a batch with two
    workers) can be handed the same port, so one dies before replying."""
    prefix = connection_file.with_name(connection_file.name.removesuffix(".json") + ".ipc")
    return prefix if len(os.fsencode(str(prefix))) + 4 <= MAX_SOCKET_PATH else None


def kernel_leftovers() -> list[Leftover]:
    """Connection files and socket files of run kernels whose owner process is dead."""
    folder = kernel_runtime_dir()
    if not folder.is_dir():
        return []
    found = [Leftover(p, "kernel connection file") for p in sorted(folder.glob(f"{KERNEL_FILE_PREFIX}*.json"))
             if owner_of(p.name) and is_stale(p)]
    found += [Leftover(p, "kernel socket file") for p in sorted(folder.glob(f"{KERNEL_FILE_PREFIX}*.ipc-*"))
              if owner_of(p.name) and is_stale(p)]
    return found


def all_leftovers() -> list[Leftover]:
    """Every stale leftover of every theme under outputs/, and of run kernels."""
    root = paths.outputs_dir()
    themes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")) if root.is_dir() else []
    return [item for d in themes for item in run_leftovers(d)] + kernel_leftovers()


def remove_leftovers(items: list[Leftover]) -> list[Leftover]:
    """Remove ``items``; the ones removed."""
    removed = []
    for item in items:
        try:
            item.remove()
            removed.append(item)
        except FileNotFoundError:
            removed.append(item)  # removed meanwhile by another run's sweep
        except OSError:
            pass  # gone meanwhile, or not ours to remove: listed again next time
    return removed


def sweep_theme(theme_id: str) -> list[Leftover]:
    """Remove the stale leftovers of a theme's runs and of run kernels (start of a run)."""
    return remove_leftovers(run_leftovers(paths.theme_outputs_dir(theme_id)) + kernel_leftovers())


__all__ = ["KERNEL_FILE_PREFIX", "LATEST_TMP_PREFIX", "Leftover", "TMP_PREFIX", "all_leftovers", "is_alive",
           "is_stale", "kernel_connection_file", "kernel_ipc_prefix", "kernel_leftovers", "owner_of", "owner_tag", "remove_leftovers",
           "run_leftovers", "sweep_theme"]
