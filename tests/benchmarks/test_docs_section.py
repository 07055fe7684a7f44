"""The benchmarks' docs writer replaces only its own marked section."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.docs_section import replace_between

BEGIN = "<!-- BEGIN x -->"
END = "<!-- END x -->"


def test_only_the_marked_section_is_replaced(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(f"# Title ±\n\n{BEGIN}\nold table\n{END}\n\nafter\n", encoding="utf-8")
    replace_between(page, BEGIN, END, "| new | 1 µs |")
    assert page.read_text(encoding="utf-8") == f"# Title ±\n\n{BEGIN}\n| new | 1 µs |\n{END}\n\nafter\n"


def test_a_second_run_with_the_same_section_changes_nothing(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(f"a\n{BEGIN}\n{END}\nb\n", encoding="utf-8")
    replace_between(page, BEGIN, END, "s\n")
    once = page.read_text(encoding="utf-8")
    replace_between(page, BEGIN, END, "s\n")
    assert page.read_text(encoding="utf-8") == once


@pytest.mark.parametrize("text", [f"{BEGIN}\nno end\n", f"{END}\n{BEGIN}\n", "no markers\n"])
def test_missing_or_reversed_markers_are_refused_with_the_page_named(tmp_path: Path, text: str) -> None:
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=r"page\.md"):
        replace_between(page, BEGIN, END, "s")
    assert page.read_text(encoding="utf-8") == text
