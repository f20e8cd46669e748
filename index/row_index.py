"""The rows of one index version grouped by article, speaker and section, built once per
version, so that filters, a follow-up's articles and bonuses are row sets, not passes over
every row. The chunk table's columns are vectorised (no Chunk per row: that took seconds and
hundreds of MB at a million chunks), and a speaker is coded once per distinct name."""

from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np

from index.errors import InvalidQueryError
from index.people import PersonNames
from index.records import SECTIONS, Filters
from index.row_groups import RowGroups, intersect
from index.version import IndexVersion


class RowIndex:
    """Row sets of one index version: by article, by speaker, by section, and by date."""

    def __init__(self, index: IndexVersion) -> None:
        self._articles = index.articles
        table = index.chunks
        self.article_ids = table.article_ids
        self.by_article = RowGroups(table.article_index, len(index.articles.dates))
        self._speaker_codes: dict[str, int] = {}
        names: set[str] = set()

        def speaker_code(name: str | None) -> int:
            if name:
                names.add(name)
            return self._speaker_codes.setdefault((name or "").casefold(), len(self._speaker_codes))

        codes = table.map_speakers(speaker_code).astype(np.int64)
        self._by_speaker = RowGroups(codes, len(self._speaker_codes))
        self.people = PersonNames(names)  # the archive's speakers, to find them named in text
        section_codes = np.zeros(len(table), dtype=np.int64)
        for code, section in enumerate(SECTIONS):
            section_codes[table.sections == section] = code
        self._by_section = RowGroups(section_codes, len(SECTIONS))

    def of_articles(self, article_ids: Iterable[str]) -> np.ndarray:
        """Rows of those articles (unknown ids have none)."""
        numbers = [self._articles.number(a) for a in article_ids]
        return self.by_article.union([n for n in numbers if n is not None])

    def of_speakers(self, names: Iterable[str]) -> np.ndarray:
        """Rows those people speak (names compared case-folded; unknown names have none)."""
        return self._by_speaker.union([self._speaker_codes.get(n.casefold(), -1) for n in names])

    def of_section(self, section: str) -> np.ndarray:
        return self._by_section.rows(SECTIONS.index(section))

    def allowed(self, filters: Filters) -> np.ndarray | None:
        """The rows `filters` allow, ascending; None when they allow everything."""
        if filters.empty:
            return None
        unknown = set(filters.sections or ()) - set(SECTIONS)
        if unknown:
            raise InvalidQueryError(f"unknown section {sorted(unknown)}; sections are {list(SECTIONS)}")
        by_article = by_speaker = by_section = by_date = None
        if filters.article_ids:
            by_article = self.of_articles(filters.article_ids)
        if filters.speakers:
            by_speaker = self.of_speakers(filters.speakers)
        if filters.sections:
            by_section = self._by_section.union([SECTIONS.index(s) for s in filters.sections])
        if filters.date_from or filters.date_to:
            by_date = self.by_article.union(self._articles_dated(filters.date_from, filters.date_to))
        return intersect(by_article, by_speaker, by_section, by_date)

    def _articles_dated(self, first: str | None, last: str | None) -> np.ndarray:
        """Numbers of the articles dated from `first` to `last` (inclusive; undated ones never)."""
        order, dates = self._articles_by_date
        low = np.searchsorted(dates, first or "", side="left")
        low = max(int(low), int(np.searchsorted(dates, "", side="right")))  # skip the undated
        high = np.searchsorted(dates, last, side="right") if last else len(dates)
        return order[low:high]

    @functools.cached_property
    def _articles_by_date(self) -> tuple[np.ndarray, np.ndarray]:
        """Article numbers in date order, and their dates to the day (built on the first date
        filter): an article dated "2021-03-04T10:00:00Z" is on 2021-03-04."""
        dates = self._articles.dates.astype("U10")
        order = np.argsort(dates, kind="stable")
        return order, dates[order]
