"""The one exception type for errors a user can cause, and its message template.

Every such error reads ``<where>: <key> must be <constraint>. Got <value> instead.``
(or a free-form sentence that still starts with ``<where>:``), fits on one line, and
makes the CLI exit with code 2 and no traceback.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable


class SeqclfError(ValueError):
    """An error caused by the user's input (config, data, command line, run directory).

    The message is kept to one line whatever it quotes: a line break or other control
    character (from a YAML key, a CSV cell, a file name) is shown escaped, as ``\\r``.
    It is a ValueError, as scikit-learn (and Python convention) expect of bad arguments.
    """

    exit_code = 2

    def __init__(self, message: Any = "", *args: Any) -> None:
        super().__init__(one_line(str(message)), *args)


def one_line(text: str) -> str:
    """``text`` with control characters (line breaks included) escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def must_be(where: Any, key: str, constraint: str, got: Any) -> SeqclfError:
    """Build a SeqclfError in the project's template.

    Args:
        where: The file, run directory or other place the problem is in.
        key: The config key, column or argument at fault (may be empty).
        constraint: What the value must be, e.g. ``"> 0"`` or ``"one of: a, b"``.
        got: The offending value, shown with ``repr`` for strings.
    """
    subject = f"{key} must be" if key else "must be"
    return SeqclfError(f"{where}: {subject} {constraint}. Got {show(got)} instead.")


def show(value: Any, limit: int = 80) -> str:
    """Render a value for an error message: quoted strings, shortened long values."""
    text = repr(value) if isinstance(value, str) else str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return `` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""
