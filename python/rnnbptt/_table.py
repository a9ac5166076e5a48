"""The aligned text tables that the command line prints (``rnnbptt demo``, ``gradcheck`` and
``compare``)."""

from __future__ import annotations

from collections.abc import Sequence


def text_table(headers: Sequence[object], rows: Sequence[Sequence[object]]) -> str:
    """``headers`` and ``rows`` as left-aligned columns two spaces apart, a rule of dashes under
    the headers, no trailing spaces.

    Parameters
    ----------
    headers : sequence
        The column titles (``str()`` of each).
    rows : sequence of sequences
        The cells, as many per row as ``headers`` (``str()`` of each).

    Returns
    -------
    str
        The lines of the table, joined by newlines (no final newline).
    """
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
