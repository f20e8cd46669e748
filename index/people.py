"""Which of the archive's people a passage names.

The people are the index's speakers (authors, commenters, people quoted). A passage names one
by the full name ("Dr Michael Dixon") or, as news style does after the first mention, by the
surname alone ("Mr Mayo said"). A follow-up's "he" after "Which GP leader chairs the NHS
Alliance?" means the man the answer names, even when the passage that names him quotes no
one (`index.followup.resolve`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

# Runs of capitalised words (with inner apostrophes or hyphens: O'Brien, Lloyd-Webber).
_CAPITALISED_RUN = re.compile(r"\b[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)*")


class PersonNames:
    """Looks up the people a text names, by full name or surname, in one pass over its
    capitalised words (no loop over every known name: an archive has thousands)."""

    def __init__(self, names: Iterable[str]) -> None:
        self._by_words: dict[str, set[str]] = defaultdict(set)
        for name in names:
            words = name.split()
            if len(words) < 2:
                continue  # a lone handle ("Admin", "Jo") is no name to look for in prose
            self._by_words[" ".join(words)].add(name)
            self._by_words[words[-1]].add(name)
        self._longest = max((len(key.split()) for key in self._by_words), default=0)

    def mentioned(self, text: str) -> list[str]:
        """The people `text` names, in order of first mention; a surname that several people
        share names all of them."""
        found: dict[str, None] = {}
        for run in _CAPITALISED_RUN.finditer(text):
            words = run.group(0).split()
            position = 0
            while position < len(words):
                # The longest known name starting here: "Michael Dixon" before "Dixon".
                for size in range(min(self._longest, len(words) - position), 0, -1):
                    people = self._by_words.get(" ".join(words[position : position + size]))
                    if people:
                        found.update(dict.fromkeys(sorted(people)))
                        position += size
                        break
                else:
                    position += 1
        return list(found)
