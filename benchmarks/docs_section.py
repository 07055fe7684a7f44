"""Rewrite the marked section of a docs page with what a benchmark printed.

A page holds ``<!-- BEGIN name -->`` and ``<!-- END name -->`` markers; everything between them belongs to the
benchmark that owns the name and is replaced on every run, the rest of the page is left as it is.
"""

from __future__ import annotations

from pathlib import Path


def replace_between(path: Path, begin: str, end: str, section: str) -> None:
    """Replace the text between the ``begin`` and ``end`` markers of ``path`` with ``section``.

    Raises ``ValueError`` naming the page and the marker when a marker is missing.
    """
    text = path.read_text(encoding="utf-8")
    if begin not in text or end not in text.split(begin, 1)[1]:
        raise ValueError(f"{path}: the markers {begin!r} ... {end!r} are missing (in that order)")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{section}\n{end}{tail}", encoding="utf-8")
