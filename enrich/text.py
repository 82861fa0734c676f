"""Text helpers for one-line messages (pure; a leaf: imports nothing of the package)."""

from __future__ import annotations

__all__ = ["shown_name"]


def shown_name(name: str) -> str:
    """A user-given name as a one-line message shows it: control characters escaped.

    No quotes are added; the message puts its own around it.
    """
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in name)
