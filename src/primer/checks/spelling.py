""""did you mean ...?": the one rule for a near spelling, shared by every hint primer gives."""

import difflib
from collections.abc import Iterable


def closest(word: str, options: Iterable, cutoff: float = 0.8) -> str | None:
    """The option spelled closest to `word`, if one is close enough to be the word meant."""
    found = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=cutoff)
    return found[0] if found else None
