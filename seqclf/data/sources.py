"""The files a data path names, and their digest for run manifests.

``data.train`` / ``data.test`` (and ``--data``) name one file, a glob pattern (its
matches, sorted by name: the shards of one dataset, in a stable order) or a list of files
(read in the list's order; each entry may be a pattern too).
"""

from __future__ import annotations

import glob
import hashlib
from pathlib import Path
from typing import Any

from seqclf.errors import SeqclfError

PATTERN_CHARS = "*?["


def data_files(spec: Any) -> list[Path]:
    """The files ``spec`` names, in reading order.

    Raises:
        SeqclfError: A pattern that matches no file; a file named twice.
    """
    entries = list(spec) if isinstance(spec, (list, tuple)) else [spec]
    files: list[Path] = []
    for entry in entries:
        files += _expand(str(entry))
    seen: set[Path] = set()
    for path in files:
        if path in seen:
            raise SeqclfError(f"{path}: is named twice (by two entries or patterns of the data "
                              "path). Name each shard once.")
        seen.add(path)
    return files


def is_pattern(path: str) -> bool:
    """Whether a data path is a glob pattern (rather than one file's name)."""
    return any(c in path for c in PATTERN_CHARS) and not Path(path).exists()


def _expand(entry: str) -> list[Path]:
    if not is_pattern(entry):
        return [Path(entry)]
    matches = sorted(glob.glob(str(Path(entry).expanduser()), recursive=True))
    if not matches:
        raise SeqclfError(f"{entry}: no file matches this pattern. Check the path in the "
                          "config or command.")
    return [Path(m) for m in matches]


def describe(spec: Any) -> str:
    """What messages call a data path: the file, the pattern, or the list."""
    if isinstance(spec, (list, tuple)):
        paths = [str(p) for p in spec]
        if len(paths) == 1:
            return paths[0]
        return ", ".join(paths[:3]) + (f", ... ({len(paths)} files)" if len(paths) > 3 else "")
    return str(spec)


def file_sha256(path: Any) -> str:
    """The sha256 of a file; of several (a pattern or a list of shards), the sha256 of
    their names and digests, in reading order."""
    files = data_files(path)
    if len(files) == 1 and not isinstance(path, (list, tuple)) and not is_pattern(str(path)):
        return _sha256(files[0])
    lines = "".join(f"{_sha256(f)}  {f}\n" for f in files)
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def digests(*specs: Any) -> dict[str, str]:
    """Each file the data paths ``specs`` name (None: none) -> its sha256: what a run's
    manifest records, and what ``changed`` compares with."""
    return {str(f): _sha256(f) for spec in specs if spec for f in data_files(spec)}


def changed(recorded: dict[str, str], *specs: Any) -> str | None:
    """The first file the data paths ``specs`` name that differs from its ``recorded``
    digest or is not among them (a glob may match a new shard), or None. Files that are
    gone are left to the reader's own message."""
    try:
        now = digests(*specs)
    except (SeqclfError, OSError):
        return None
    for path, digest in now.items():
        if recorded.get(path) != digest:
            return path
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
