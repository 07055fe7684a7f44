"""Atomic, durable file writes shared by the report, the trace recorder and the PRE coefficients.

A file is staged beside its target and renamed over it: readers see the old content or the whole new one,
whatever happens to the writing process. A file is also *durable* when its staged content is fsynced before
the rename: then even an operating-system crash or a power cut cannot leave it empty or partial. A file not
fsynced reaches the disk with the system's own writeback (ext4: within about 5 to 30 seconds).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Collection
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


def with_note(exc: OSError, note: str) -> OSError:
    """``exc`` again (same class and errno), its message ending with what became of the files."""
    message = f"{exc.strerror or exc}; {note}"
    again = OSError(exc.errno, message, exc.filename) if exc.errno is not None else OSError(message)
    again.__cause__ = exc
    return again


def _set_aside(path: Path) -> Path | None:
    """A hard link (or copy) of ``path``'s current content beside it, to restore it; ``None`` if absent."""
    if not path.exists():
        return None
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old")
    os.close(fd)
    aside = Path(name)
    aside.unlink()
    try:
        os.link(path, aside)
    except OSError:  # a file system without hard links
        shutil.copy2(path, aside)
    return aside


def atomic_write_texts(files: dict[Path, str], *, durable: Collection[Path] | None = None) -> list[Path]:
    """Write several files as a pair (or set): all or none of them change.

    Every file is staged (and fsynced when it is ``durable``: default all of them), and every existing
    target set aside (a hard link), before the first rename. If staging fails, nothing is renamed. If a
    rename fails, the targets already replaced are put back. Either way the ``OSError`` raised ends with
    "no file was changed"; only when putting a file back fails too does it say exactly which file holds the
    new content.
    """
    staged: list[tuple[Path, Path]] = []
    kept: list[Path | None] = []
    try:
        for path, text in files.items():
            fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            tmp = Path(tmp_name)
            staged.append((tmp, path))
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
                handle.flush()
                if durable is None or path in durable:
                    os.fsync(handle.fileno())
            os.chmod(tmp, 0o666 & ~_umask())
        for _, path in staged:  # one file needs no copy: its rename is atomic
            kept.append(_set_aside(path) if len(staged) > 1 else None)
    except OSError as exc:
        _discard([tmp for tmp, _ in staged] + [k for k in kept if k is not None])
        raise with_note(exc, "no file was changed") from exc
    except BaseException:
        _discard([tmp for tmp, _ in staged] + [k for k in kept if k is not None])
        raise
    done: list[Path] = []
    try:
        for tmp, path in staged:
            os.replace(tmp, path)
            done.append(path)
    except OSError as exc:
        _discard([tmp for tmp, _ in staged[len(done) :]])
        raise with_note(exc, _roll_back(done, kept)) from exc
    _discard([k for k in kept if k is not None])
    return done


def _roll_back(done: list[Path], kept: list[Path | None]) -> str:
    """Put back the targets in ``done`` (the first ones of the set); say what became of the files."""
    changed: list[str] = []
    for path, aside in zip(done, kept, strict=False):
        try:
            if aside is None:
                path.unlink()
            else:
                os.replace(aside, path)
        except OSError as exc:
            before = "did not exist before" if aside is None else f"its previous content is in {aside}"
            changed.append(f"{path} holds the new content ({before}; putting it back failed: {exc})")
    _discard([k for k in kept[len(done) :] if k is not None])
    if not changed:
        return "no file was changed"
    return "only " + "; ".join(changed) + "; every other file was left as it was"


def _discard(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
