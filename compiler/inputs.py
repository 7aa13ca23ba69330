"""Reading the files a user names (sources, imports, catalogs, plans): regular files only.

Each is opened without blocking, checked to be a regular file of at most a
given size, and read with that bound. A folder, a named pipe (which would block
the compiler forever), a device (``/dev/zero`` never ends), a socket or a
pseudo-file of ``/proc`` or ``/sys`` (which reports a size its contents do not
have, and may hold secrets such as ``/proc/self/environ``) is refused with a
reason, before anything of it is read. Callers turn :class:`InputRefused` into
their own diagnostic; nothing here shows what a file contains.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

#: Largest ``.exo`` source file (also ``parser.MAX_FILE_BYTES``).
MAX_SOURCE_BYTES = 16 * 2**20
#: Largest catalog CSV.
MAX_CATALOG_BYTES = 16 * 2**20
#: Largest spot trace JSON (``exoc simulate --trace``): 45 days of 5-minute ticks are ~40 KiB.
MAX_TRACE_BYTES = 64 * 2**20
#: Largest plan JSON (``exoc diff``): a 100,000-step plan is about 60 MiB.
MAX_PLAN_BYTES = 256 * 2**20

#: Mount points of pseudo-file systems whose files must never be read as input.
_PSEUDO_ROOTS = ("/proc", "/sys", "/dev")


class InputRefused(Exception):
    """The file exists but is not one exo reads; ``reason`` completes "FILE ..."."""

    def __init__(self, reason: str, *, too_large: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        #: The file is refused for its size only (E012 for a source file).
        self.too_large = too_large


def _kind(mode: int) -> str | None:
    """Why a file of this mode is refused, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if stat.S_ISFIFO(mode):
        return "is a named pipe (FIFO), not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a regular file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a regular file"
    return "is not a regular file"


def _pseudo_devices() -> set[int]:
    out: set[int] = set()
    try:
        root = Path("/").stat().st_dev
    except OSError:  # pragma: no cover - every system has a root
        return out
    for p in _PSEUDO_ROOTS:
        try:
            dev = Path(p).stat().st_dev
        except OSError:
            continue
        if dev != root:
            out.add(dev)
    return out


def _mib(n: int) -> str:
    return f"{n / 2**20:g} MiB"


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes.

    Raises :class:`OSError` (``FileNotFoundError``, ``PermissionError`` ...) when
    it cannot be opened and :class:`InputRefused` when it is not a regular
    file, lives on a pseudo-file system, is too large, or changes while read.
    """
    before = path.stat()  # follows links: the target is what is read
    reason = _kind(before.st_mode)
    if reason is not None:
        raise InputRefused(reason)
    if before.st_dev in _pseudo_devices():
        raise InputRefused("is a pseudo-file of the operating system (/proc, /sys, /dev)")
    if before.st_size > limit:
        raise InputRefused(f"is larger than {_mib(limit)}", too_large=True)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    try:
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (before.st_dev, before.st_ino) or _kind(
            opened.st_mode
        ):
            raise InputRefused("was replaced while it was opened")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise InputRefused(f"is larger than {_mib(limit)}", too_large=True)
    if size != opened.st_size:
        raise InputRefused(
            f"holds {size} bytes but reports a size of {opened.st_size} "
            "(a pseudo-file, or a file being written)"
        )
    return b"".join(chunks)
