"""Split segments into passages sized in the embedding model's word pieces, with offsets."""

from __future__ import annotations

import hashlib

from langchain_text_splitters import RecursiveCharacterTextSplitter

from index.records import ArticleRecord, Chunk
from ingest.segment import Segment

# Paragraphs, lines, sentences, clauses, words: the splitter tries each in turn.
_SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]


def make_splitter(tokenizer, chunk_tokens: int, overlap_tokens: int) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
        tokenizer,
        chunk_size=chunk_tokens,
        chunk_overlap=overlap_tokens,
        separators=_SEPARATORS,
        keep_separator="end",
        strip_whitespace=True,
    )


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_article(
    article: ArticleRecord, segments: list[Segment], splitter: RecursiveCharacterTextSplitter
) -> list[Chunk]:
    """Chunks of each segment (never across two), with `text == article.text[start:end]`."""
    chunks = []
    for segment in segments:
        segment_text = article.text[segment.start : segment.end]
        search_from = 0
        for piece in splitter.split_text(segment_text):
            # Pieces come in order and each starts after the previous one's start.
            offset = segment_text.find(piece, search_from)
            if offset < 0:
                raise AssertionError(f"chunk of {article.id} not found in its segment")
            search_from = offset + 1
            start = segment.start + offset
            end = start + len(piece)
            chunks.append(
                Chunk(
                    id=sha256(f"{article.id}\0{start}\0{piece}")[:24],
                    article_id=article.id,
                    text=piece,
                    start=start,
                    end=end,
                    section=segment.section,
                    speaker=segment.speaker,
                    text_hash=sha256(piece),
                )
            )
    return chunks
