"""Loaded at start-up by every Python process whose ``PYTHONPATH`` begins with this folder (the GPU visit's
dry run and its child processes): makes the process look like the GPU machine, which has no CodeCarbon and
no network, and writes every attempt at either, one line each, to the file named by ``VISIT_GUARD_LOG``.

An attempt fails as it would there (``ModuleNotFoundError``, ``OSError``); the log is what the test reads,
so that an attempt caught and ignored by the code under test is still seen.
"""

from __future__ import annotations

import importlib.abc
import os
import socket
import sys
import traceback
from typing import Any

_LOG = os.environ.get("VISIT_GUARD_LOG")


def _note(what: str) -> None:
    if _LOG:
        where = "".join(traceback.format_stack(limit=6)[:-2]).replace("\n", " | ")
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(f"{os.getpid()} {what} at {where}\n")


class _NoCodeCarbon(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname == "codecarbon" or fullname.startswith("codecarbon."):
            _note(f"import {fullname}")
            raise ModuleNotFoundError(f"No module named {fullname!r} (the GPU machine has no CodeCarbon)")
        return None


def _no_network(name: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        _note(f"network {name}{args[:2]!r}")
        raise OSError(f"{name}: no network on the GPU machine")

    return refuse


_connect = socket.socket.connect


def _connect_local_only(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        return _no_network("socket.connect")(address)
    return _connect(self, address)


if _LOG:
    sys.meta_path.insert(0, _NoCodeCarbon())
    socket.socket.connect = _connect_local_only  # type: ignore[method-assign]
    socket.getaddrinfo = _no_network("socket.getaddrinfo")  # type: ignore[assignment]
    socket.create_connection = _no_network("socket.create_connection")  # type: ignore[assignment]
