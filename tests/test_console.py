"""What a user sees in a real terminal: the end-of-run line survives the Rich progress bar's last redraw."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

pty = pytest.importorskip("pty", reason="pseudo-terminals are a POSIX feature")
pytest.importorskip("rich", reason="RichProgressBar needs rich")

WIDTH = 120
FIT = """
import sys, warnings
import lightning.pytorch as pl
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.demos.boring_classes import BoringModel
from lightning_energy import EnergyCallback
from lightning_energy.meters import FakeMeter

warnings.filterwarnings("ignore")
callback = EnergyCallback(meter=FakeMeter({"cpu": 10.0}), history_path=False)
trainer = pl.Trainer(
    accelerator="cpu", max_epochs=3, limit_train_batches=4, limit_val_batches=2, default_root_dir=sys.argv[1],
    callbacks=[callback, RichProgressBar(leave=True)], enable_model_summary=False, logger=False,
    enable_checkpointing=False,
)
trainer.fit(BoringModel())
with open(sys.argv[2], "w") as out:
    out.write(callback.run.stability_line())
"""

_CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")


def screen(output: str, width: int = WIDTH) -> list[str]:
    """The rows a terminal of ``width`` columns shows after ``output`` (scroll-back kept): the few controls
    Rich and Lightning write (carriage return, line feed, cursor up/down/column, erase in line); colours
    and other escape sequences are dropped."""
    rows: list[list[str]] = [[]]
    row = col = 0
    i = 0
    while i < len(output):
        char = output[i]
        match = _CSI.match(output, i) if char == "\x1b" else None
        if match is not None:
            params, command = match.groups()
            n = int(params) if params.isdigit() else 1
            if command == "A":
                row = max(0, row - n)
            elif command == "B":
                row += n
            elif command == "G":
                col = n - 1
            elif command == "K":
                line = rows[row] if row < len(rows) else []
                if params == "2":
                    line.clear()
                elif params in ("", "0"):
                    del line[col:]
                else:  # 1: to the cursor
                    line[: col + 1] = [" "] * min(len(line), col + 1)
            i = match.end()
            continue
        i += 1
        if char == "\r":
            col = 0
        elif char == "\n":
            row += 1
        elif char == "\x1b" or not char.isprintable():
            continue
        else:
            if col >= width:  # automatic margins: wrap to the next row
                row, col = row + 1, 0
            while len(rows) <= row:
                rows.append([])
            line = rows[row]
            line.extend(" " * (col + 1 - len(line)))
            line[col] = char
            col += 1
        while len(rows) <= row:
            rows.append([])
    return ["".join(r).rstrip() for r in rows]


def test_screen_follows_cursor_movements() -> None:
    assert screen("bar 1\r\nbar 2\r\x1b[2K\x1b[1A\x1b[2Kbar 3\r\nbar 4") == ["bar 3", "bar 4"]
    assert screen("abcdef\rxy\x1b[K") == ["xy"]
    assert screen("x" * 5 + "y", width=5) == ["xxxxx", "y"]


def run_in_terminal(args: list[str], timeout_s: float = 120.0) -> str:
    """Run ``args`` with a pseudo-terminal of ``WIDTH`` columns as stdin/stdout/stderr; all it wrote."""
    import fcntl
    import struct
    import termios

    main_fd, child_fd = pty.openpty()
    fcntl.ioctl(child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, WIDTH, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(WIDTH), "LINES": "40"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(args, stdin=child_fd, stdout=child_fd, stderr=child_fd, env=env)
    os.close(child_fd)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main_fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(main_fd, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            elif process.poll() is not None:
                break
        else:
            process.kill()
            pytest.fail(f"{args} ran past {timeout_s} s")
        assert process.wait(timeout=30) == 0, b"".join(chunks).decode(errors="replace")[-3000:]
    finally:
        os.close(main_fd)
    return b"".join(chunks).decode("utf-8", errors="replace")


@pytest.mark.timeout(180)
def test_the_end_of_run_line_survives_the_rich_bars_last_redraw(tmp_path: Path) -> None:
    line_file = tmp_path / "line.txt"
    output = run_in_terminal([sys.executable, "-c", FIT, str(tmp_path), str(line_file)])
    stability = line_file.read_text()
    assert stability.startswith("STEP declared stable energy after epoch")
    rows = screen(output)
    expected = f"lightning_energy: {stability}"
    # on a row of its own, whole, on the screen the user is left with (after the bar stopped)
    assert any(row == expected for row in rows), "\n".join(rows[-12:])
    last_bar = max(i for i, row in enumerate(rows) if row.startswith("Epoch 2/2"))
    assert rows.index(expected) < last_bar  # printed above the live bar, so its redraws never reach it
