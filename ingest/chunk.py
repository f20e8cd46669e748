"""Split segments into passages sized in the embedding model's word pieces, with offsets.

Paragraphs first: a blank line starts a new passage once the passage so far holds half a
chunk of word pieces; shorter paragraphs (headings, one-line news paragraphs) join the next
ones. LangChain's splitter then cuts each group of paragraphs to size, with overlap. Left to
itself the splitter packs paragraphs greedily, so a short paragraph rode along at the end of
an unrelated one and its topic was diluted there (docs/history/quality-2026-11-to-12.md, "Paragraph-first chunks").
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from langchain_text_splitters import RecursiveCharacterTextSplitter

from index.records import ArticleRecord, Chunk
from ingest.segment import Segment

# Paragraphs, lines, sentences, clauses, words: the splitter tries each in turn.
_SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n")  # a blank line, spaces or "\r" allowed


class Chunker:
    """Cuts an article's segments into chunks of at most `chunk_tokens` word pieces."""

    def __init__(self, tokenizer, chunk_tokens: int, overlap_tokens: int) -> None:
        self._splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
            tokenizer,
            chunk_size=chunk_tokens,
            chunk_overlap=overlap_tokens,
            separators=_SEPARATORS,
            keep_separator="end",
            strip_whitespace=True,
        )
        self._tokenizer = tokenizer
        self.paragraph_tokens = chunk_tokens // 2

    def chunk(self, article: ArticleRecord, segments: list[Segment]) -> list[Chunk]:
        """Chunks of each segment (never across two), with `text == article.text[start:end]`."""
        chunks = []
        for segment in segments:
            for start, end in paragraph_groups(
                article.text, segment.start, segment.end, self.paragraph_tokens, self._count
            ):
                chunks += self._split(article, segment, start, end)
        return chunks

    def _count(self, text: str) -> int:
        return len(self._tokenizer.tokenize(text))

    def _split(self, article: ArticleRecord, segment: Segment, start: int, end: int) -> list[Chunk]:
        group = article.text[start:end]
        out = []
        search_from = 0
        for piece in self._splitter.split_text(group):
            # Pieces come in order and each starts after the previous one's start.
            offset = group.find(piece, search_from)
            if offset < 0:
                raise AssertionError(f"chunk of {article.id} not found in its segment")
            search_from = offset + 1
            piece_start = start + offset
            out.append(
                Chunk(
                    id=sha256(f"{article.id}\0{piece_start}\0{piece}")[:24],
                    article_id=article.id,
                    text=piece,
                    start=piece_start,
                    end=piece_start + len(piece),
                    section=segment.section,
                    speaker=segment.speaker,
                    text_hash=sha256(piece),
                )
            )
        return out


def paragraph_groups(
    text: str, start: int, end: int, min_tokens: int, count_tokens: Callable[[str], int]
) -> list[tuple[int, int]]:
    """`text[start:end]` as runs of whole paragraphs, (start, end) each: a paragraph opens a new
    run when the current run has at least `min_tokens` (a paragraph's count is summed once)."""
    paragraphs = []
    position = start
    for match in _PARAGRAPH_BREAK.finditer(text, start, end):
        paragraphs.append((position, match.start()))
        position = match.end()
    paragraphs.append((position, end))

    groups: list[tuple[int, int]] = []
    tokens = 0
    for paragraph_start, paragraph_end in paragraphs:
        if groups and tokens < min_tokens:
            groups[-1] = (groups[-1][0], paragraph_end)
        else:
            groups.append((paragraph_start, paragraph_end))
            tokens = 0
        tokens += count_tokens(text[paragraph_start:paragraph_end])
    return groups


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
