"""Messages for names that are not known: a suggestion for near misses, then the list (stdlib only)."""

from __future__ import annotations

import difflib
from typing import Any, Iterable


def suggest(name: Any, known: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``known``, or ``""``."""
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def unknown(kind: str, name: Any, known: Iterable[str]) -> str:
    """``"unknown KIND 'x'; did you mean 'y'? known: a, b"``."""
    known = list(known)
    hint = suggest(name, known)
    return f"unknown {kind} {name!r}{hint or ';'} known: {', '.join(known) or '(none)'}"
