"""Every file seqclf writes goes through here: one set of rules for every output target.

* A regular file (new, or replacing one) is written atomically: a temporary file in the
  same folder, then a rename, so a reader sees the old file or the whole new one. The
  temporary file is created as a plain ``open()`` creates a file (mode 0666 less the
  umask), and a replaced file's permission bits are kept.
* A symlink is written through: the rules apply to the file it ends at (a dangling link
  creates its target), and the link itself stays.
* Anything else that exists (a FIFO, a character or block device, a socket) and the
  descriptors of this process (``/dev/stdout``, ``/dev/fd/N``, ``/proc/self/fd/N``) is
  written to directly, streamed, never replaced or created.
* ``-`` is standard output.
* A directory, a missing folder or a folder without write permission is a one-line
  ``SeqclfError`` before anything is written; so is any ``OSError`` while writing (no
  space left, a reader that went away), and a failed atomic write leaves no temporary
  file and the old file as it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from seqclf.errors import SeqclfError

STDOUT = "-"  # the output name that means standard output
CHUNK = 1 << 20

NEW = "new"  # no file yet: created atomically
FILE = "file"  # an existing regular file: replaced atomically, its mode kept
STREAM = "stream"  # a FIFO, a device, a descriptor: written in place
STANDARD_OUTPUT = "stdout"


@dataclass(frozen=True)
class Target:
    """Where a write to ``path`` lands, and how it is written.

    Attributes:
        path: The path as given (what messages name).
        kind: ``new``, ``file``, ``stream`` or ``stdout``.
        final: The path written: ``path``, or where its symlinks end.
        mode: The permission bits to keep (an existing regular file), else None.
        fd: A descriptor of this process that ``path`` names (``/dev/stdout``), else None.
    """

    path: Path
    kind: str
    final: Path
    mode: int | None = None
    fd: int | None = None

    @property
    def atomic(self) -> bool:
        return self.kind in (NEW, FILE)


def is_stdout(path: str | os.PathLike | None) -> bool:
    """Whether ``path`` is ``-``, standard output."""
    return path is not None and os.fspath(path) == STDOUT


def describe(path: str | os.PathLike) -> str:
    """``path`` as a message names it (``standard output`` for ``-``)."""
    return "standard output" if is_stdout(path) else os.fspath(path)


def target(path: str | os.PathLike) -> Target:
    """Classify ``path`` as an output target (nothing is written).

    Raises:
        SeqclfError: ``path`` is a directory, its folder is missing or not writable, or
            its symlinks cannot be followed.
    """
    path = Path(path)
    if is_stdout(path):
        return Target(path, STANDARD_OUTPUT, path)
    try:
        final, fd = _follow(path)
        st = None if fd is not None else _stat(final)
    except OSError as exc:
        raise _error(path, exc) from None
    if fd is not None:
        return Target(path, STREAM, final, fd=fd)
    if st is None:
        folder = final.parent
        if not folder.is_dir():
            raise SeqclfError(f"{path}: cannot write: the folder {folder} does not exist. "
                              "Create it first.")
        _check_folder(path, folder)
        return Target(path, NEW, final)
    if stat.S_ISDIR(st.st_mode):
        raise SeqclfError(f"{path}: is a directory. Give a file name to write.")
    if stat.S_ISREG(st.st_mode):
        _check_folder(path, final.parent)
        return Target(path, FILE, final, mode=stat.S_IMODE(st.st_mode))
    if not os.access(final, os.W_OK):
        raise SeqclfError(f"{path}: cannot write: no permission to write to it.")
    return Target(path, STREAM, final)


def check_writable(path: str | os.PathLike) -> Target:
    """Fail early, before any work, when nothing can be written at ``path``."""
    return target(path)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` by the rules above."""
    t = target(path)
    try:
        if t.atomic:
            with _replacing(t) as (fd, _):
                _write_all(lambda chunk: os.write(fd, chunk), data)
        else:
            with _stream(t) as write:
                write(data)
    except OSError as exc:
        raise _error(t.path, exc) from None


@contextlib.contextmanager
def writing(path: str | os.PathLike) -> Iterator[Callable[[bytes], None]]:
    """Write to ``path`` piece by piece (``write(data)`` as often as needed), by the rules
    above: a regular file appears whole when the block ends without an error (and not
    at all otherwise); standard output, a FIFO or a device receives each piece as it is
    written."""
    t = target(path)
    try:
        if t.atomic:
            with _replacing(t) as (fd, _):
                yield lambda data: _write_all(lambda chunk: os.write(fd, chunk), data)
        else:
            with _stream(t) as write:
                yield write
    except OSError as exc:
        raise _error(t.path, exc) from None


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` by the rules above."""
    write_bytes(path, text.encode("utf-8"))


def write_with(path: str | os.PathLike, save: Callable[[str], None],
               suffix: str = ".tmp") -> None:
    """Write with a writer that needs a file name (Keras's ``model.save``).

    ``save`` writes a temporary file whose name ends in ``suffix``: beside ``path`` (then
    renamed onto it) for a regular file, in a private temporary folder (then streamed)
    for anything else.
    """
    t = target(path)
    try:
        if t.atomic:
            with _replacing(t, suffix, keep_open=False) as (_, tmp):
                save(tmp)
            return
        with tempfile.TemporaryDirectory(prefix="seqclf-") as folder:
            tmp = os.path.join(folder, "output" + suffix)
            save(tmp)
            with _stream(t) as write, open(tmp, "rb") as fh:
                while chunk := fh.read(CHUNK):
                    write(chunk)
    except OSError as exc:
        raise _error(t.path, exc) from None


def make_folder(path: str | os.PathLike) -> Path:
    """Create the folder ``path`` (and its parents, as ``mkdir -p``) for files to be
    written into.

    Raises:
        SeqclfError: ``path`` is ``-``, or exists and is not a folder, or cannot be made.
    """
    path = Path(path)
    if is_stdout(path):
        raise SeqclfError(f"{path}: is standard output, not a folder. Give a folder to "
                          "write the files into.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise SeqclfError(f"{path}: is not a folder. Give a folder to write the files "
                          "into.") from None
    except OSError as exc:
        raise SeqclfError(f"{path}: cannot create the folder ({exc.strerror or exc}).") from None
    return path


def staging_directory(path: str | os.PathLike) -> Path:
    """A new, empty directory beside ``path`` (a dot name), made as a plain ``mkdir``
    makes one (mode 0777 less the umask), to be renamed to ``path`` once complete."""
    path = Path(path)
    for _ in range(100):
        staging = path.parent / f".{path.name}.{secrets.token_hex(4)}"
        try:
            staging.mkdir()
        except FileExistsError:
            continue
        return staging
    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path.parent))


# --- the two ways of writing ------------------------------------------------------------


@contextlib.contextmanager
def _replacing(t: Target, suffix: str = ".tmp",
               keep_open: bool = True) -> Iterator[tuple[int | None, str]]:
    """A new temporary file beside ``t.final`` (its open descriptor, or None when not
    ``keep_open``, and its name), renamed onto ``t.final`` when the block ends without
    an error, removed when it does not."""
    fd, tmp = _temporary(t.final, suffix)
    try:
        if not keep_open:
            os.close(fd)
        try:
            yield (fd if keep_open else None), tmp
        finally:
            if keep_open:
                os.close(fd)
        if t.mode is not None:  # after writing: a read-only mode must not stop the writer
            os.chmod(tmp, t.mode)
        os.replace(tmp, t.final)
    finally:
        with contextlib.suppress(OSError):
            if os.path.lexists(tmp):
                os.unlink(tmp)


def _temporary(final: Path, suffix: str) -> tuple[int, str]:
    """Create ``.<name>.<random><suffix>`` beside ``final`` as ``open()`` would: mode
    0666, less the umask (mkstemp would make it 0600)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = os.path.join(final.parent, f".{final.name}.{secrets.token_hex(4)}{suffix}")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(final.parent))


@contextlib.contextmanager
def _stream(t: Target) -> Iterator[Callable[[bytes], None]]:
    """A function writing to a target in place: standard output, a descriptor of this
    process, or an existing FIFO or device opened for writing (never created, never
    truncated)."""
    if t.kind == STANDARD_OUTPUT:
        sys.stdout.flush()  # what was printed before comes first
        out = getattr(sys.stdout, "buffer", None)
        try:
            if out is None:  # a text-only stream (an embedding application's)
                yield lambda data: sys.stdout.write(data.decode("utf-8"))
                sys.stdout.flush()
            else:
                yield lambda data: _write_all(out.write, data)
                out.flush()
        except BrokenPipeError:
            # The reader left (`| head`): send what is still buffered nowhere, so that
            # Python's flush at exit does not fail again after the one-line error.
            with contextlib.suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
            raise
        return
    if t.fd is not None:
        fd = os.dup(t.fd)  # shares the descriptor's offset and flags (>> appends)
    else:
        fd = os.open(t.final, os.O_WRONLY | getattr(os, "O_NOCTTY", 0)
                     | getattr(os, "O_CLOEXEC", 0))
    try:
        yield lambda data: _write_all(lambda chunk: os.write(fd, chunk), data)
    finally:
        os.close(fd)


def _write_all(write: Callable[[memoryview], int | None], data: bytes) -> None:
    """Write all of ``data``: a raw write may take only part of it (a pipe, or
    ``sys.stdout.buffer`` under ``python -u``)."""
    view = memoryview(data)
    while view:
        n = write(view[:CHUNK])
        if n is None:  # a non-blocking descriptor that is full
            raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))
        view = view[n:]


# --- where a path leads -----------------------------------------------------------------


def _follow(path: Path) -> tuple[Path, int | None]:
    """The path a write to ``path`` lands on (its symlinks followed; the folders'
    symlinks are left to the system), and the descriptor of this process it names, if
    it names one (``/dev/stdout`` -> ``/proc/self/fd/1`` -> 1)."""
    p = path
    for _ in range(40):
        fd = _own_descriptor(p)
        if fd is not None or not p.is_symlink():
            return p, fd
        link = Path(os.readlink(p))
        p = link if link.is_absolute() else p.parent / link
    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path))


def _own_descriptor(p: Path) -> int | None:
    """N when ``p`` is ``/proc/self/fd/N`` (however reached, e.g. by ``/dev/fd/N``)."""
    if not p.name.isdigit():
        return None
    folder = os.path.realpath(p.parent)
    if folder in (f"/proc/{os.getpid()}/fd", "/proc/self/fd"):
        return int(p.name)
    return None


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _check_folder(path: Path, folder: Path) -> None:
    """A new file is made in ``folder`` (also to replace one): it must be writable."""
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SeqclfError(f"{path}: cannot write: no permission to create files in the "
                          f"folder {folder}. Choose another place or fix its permissions.")


def _error(path: Path, exc: OSError) -> SeqclfError:
    where = describe(path)
    if exc.errno == errno.EPIPE:
        return SeqclfError(f"{where}: cannot write: its reader closed it before everything "
                           "was written (Broken pipe).")
    return SeqclfError(f"{where}: cannot write ({exc.strerror or exc}). Check free space "
                       "and permissions.")
