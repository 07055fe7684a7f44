"""Atomic, durable file writes shared by the report, the trace recorder and the PRE coefficients."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically: readers see the old file or the whole new one, never a part."""
    target = Path(path)
    atomic_write_texts({target: text})
    return target


def atomic_write_texts(files: dict[Path, str]) -> list[Path]:
    """Write several files as a pair (or set): all are staged and fsynced first, then renamed in turn.

    If staging any file fails, nothing is renamed and every target keeps its old content. A failure between
    renames (rare: a rename in the same folder) can leave a mix; it raises with the paths written so far.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for path, text in files.items():
            fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            tmp = Path(tmp_name)
            staged.append((tmp, path))
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o666 & ~_umask())
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    done: list[Path] = []
    for index, (tmp, path) in enumerate(staged):
        try:
            os.replace(tmp, path)
        except OSError as exc:
            for left, _ in staged[index:]:
                left.unlink(missing_ok=True)
            raise OSError(f"{exc}; already replaced: {[str(p) for p in done] or 'none'}") from exc
        done.append(path)
    return done
