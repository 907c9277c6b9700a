""""did you mean ...?": the one rule for a near spelling, shared by every hint primer gives."""

import difflib


def closest(word: str, options) -> str | None:
    return next(iter(difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.8)), None)
