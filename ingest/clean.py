"""Find scraped page furniture so it never becomes a cited passage.

Cleaning never rewrites text: it marks lines of the article as kept or dropped, so every
kept span keeps its character offsets into the original. Three general rules:

1. Lines that are one of the families of web-page furniture (browser and cookie notices,
   subscription boxes, rating widgets, comment-form chrome, share/follow prompts, legal
   footers, pingbacks) -- phrased as patterns of those families, not of any one site.
2. Navigation: short label-like lines (a few words, no sentence punctuation) next to
   furniture, and the run of them that ends a page.
3. Repeats: a long paragraph that already appeared earlier (scrapes often duplicate blocks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FURNITURE = {
    "browser": r"your browser (is|appears|seems|does)|upgrade (to )?(a )?(newer|modern|different) "
    r"(version|browser)|another browser|for the best (possible )?(browsing )?experience|"
    r"enable javascript|javascript (is )?(disabled|required)",
    "cookies": r"\bcookies?\b.*\b(consent|enable|disabled|accept|policy|settings|use of)\b|"
    r"\b(consent|enable|disabled|accept|we use)\b.*\bcookies?\b",
    "subscribe": r"subscribe (to|via|for|by)|enter your e-?mail( address)? to|join [\d,.]+k? other "
    r"(subscribers|followers)|sign up (for|to) (our|the) newsletter|newsletter sign.?up",
    "rating": r"rate this (post|article|page|story)|average rating [\d.]+|vote count|no votes so far|"
    r"be the first to (rate|comment)",
    "comments": r"leave a (reply|comment)|comments (are|is) (now )?closed|"
    r"(comments|trackbacks) (and|&) (comments|trackbacks) are (currently |now )?closed|"
    r"^\s*(\d+\.\s*)?(ping|track)back:|(sign|log) ?in to (make|post|leave|add) a comment|"
    r"you must (be )?(signed|logged|sign|log) ?in|have your say|join the (conversation|discussion)|"
    r"^\s*\d+ (comments?|responses?|replies)\s*$|html (is )?not (permitted|allowed)|"
    r"cancel reply|your e-?mail address will not be published|required fields are marked",
    "share": r"^\s*(follow|like|find) us( on .{0,30})?\s*$|^\s*share (this|on|via)\b|"
    r"click to (share|print|email)|^\s*(tweet|pin it|print|email|share)( this)?\s*$",
    "legal": r"terms (and|&) conditions|privacy (policy|notice)|all rights reserved|^\s*©|"
    r"\bcopyright (©|\d{4})|the views expressed (here |in this \w+ )?are (those of|solely|the)",
}
_FURNITURE_RE = [(name, re.compile(pattern, re.I)) for name, pattern in _FURNITURE.items()]
# Single interface words that stand alone on a line of a scraped page.
_UI_LABELS = {
    "comment", "comments", "reply", "share", "tweet", "print", "email", "like", "menu",
    "search", "home", "learn more", "read more", "more", "advertisement", "skip to content",
    "log in", "sign in", "sign up", "subscribe", "related", "related articles", "tags",
}
_MAX_FURNITURE_WORDS = 60  # a long paragraph that merely mentions cookies is content
_MAX_LABEL_WORDS = 6
_MIN_REPEAT_WORDS = 15
_BULLET = re.compile(r"^[\s•·*\-–—]+")
# "2. Richard Grimes says:" / "Jane Doe on 3 May 2019 at 10:02 said:" -- who wrote the comment below.
_NAME = r"[A-Z][\w'’.-]*(?:\s+(?:[A-Z][\w'’.-]*|van|von|de|da|der|le|la|du|di|del|bin|al)){0,4}"
COMMENT_HEADER = re.compile(
    rf"^\s*(?:(?P<number>\d+)\.\s+)?(?P<name>{_NAME})(?:\s+on\s+[^:]{{3,40}}?)?"
    r"\s+(?:says|said|wrote|writes|replied|commented)\s*:?\s*$"
)


@dataclass(frozen=True)
class Line:
    """One line of the article: text == article_text[start:end] (no newline)."""

    start: int
    end: int
    text: str
    dropped: str | None = None  # why the line was dropped; None when kept

    @property
    def blank(self) -> bool:
        return not self.text.strip()

    @property
    def kept(self) -> bool:
        return self.dropped is None and not self.blank


def split_lines(text: str) -> list[Line]:
    lines, start = [], 0
    for piece in text.split("\n"):
        lines.append(Line(start, start + len(piece), piece))
        start += len(piece) + 1
    return lines


def _words(text: str) -> list[str]:
    return text.split()


def _is_label(text: str) -> bool:
    """A few words with no sentence punctuation at the end: a heading, a link or a button."""
    stripped = _BULLET.sub("", text).strip()
    if COMMENT_HEADER.match(text):
        return False
    return 0 < len(_words(stripped)) <= _MAX_LABEL_WORDS and not re.search(r"[.!?:;,”\"')]$", stripped)


def furniture_kind(text: str) -> str | None:
    stripped = _BULLET.sub("", text).strip()
    if stripped.casefold().rstrip(".!") in _UI_LABELS:
        return "ui"
    if len(_words(stripped)) > _MAX_FURNITURE_WORDS:
        return None
    for name, pattern in _FURNITURE_RE:
        if pattern.search(stripped):
            return name
    return None


def clean(text: str) -> list[Line]:
    """All lines of `text`, furniture and repeats marked `dropped` with the reason."""
    lines = split_lines(text)
    reasons: list[str | None] = [furniture_kind(line.text) if not line.blank else None for line in lines]
    content = [i for i, line in enumerate(lines) if not line.blank]

    # Labels that sit next to furniture belong to it ("Learn more" after a cookie notice).
    changed = True
    while changed:
        changed = False
        for pos, i in enumerate(content):
            if reasons[i] or not _is_label(lines[i].text):
                continue
            neighbours = content[max(pos - 1, 0) : pos] + content[pos + 1 : pos + 2]
            if any(reasons[j] for j in neighbours):
                reasons[i] = "navigation"
                changed = True

    # The page ends in navigation: drop trailing labels and furniture up to the last real line.
    for i in reversed(content):
        if reasons[i]:
            continue
        if not _is_label(lines[i].text):
            break
        reasons[i] = "navigation"

    seen: set[str] = set()
    for i in content:
        if reasons[i]:
            continue
        normalised = " ".join(_words(lines[i].text)).casefold()
        if len(_words(normalised)) >= _MIN_REPEAT_WORDS:
            if normalised in seen:
                reasons[i] = "repeat"
            seen.add(normalised)

    return [Line(line.start, line.end, line.text, reason) for line, reason in zip(lines, reasons)]
