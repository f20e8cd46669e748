"""Writing and removing article files in the articles folder for the admin routes.

Files are written to a hidden temporary name and renamed into place, so an ingest running at
that moment sees the old file or the new one, never half of one. Each article added through
the API is its own file named by its id, so the id alone says which file to replace or delete,
and it can never name a path outside the folder (ids are validated before a path is built).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from index.files import write_atomic
from ingest.load import META_SUFFIX, SUPPORTED, ArticleFormatError, Notice, load_file, make_article

UPLOAD_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm")


def files_of(articles_dir: Path, article_id: str) -> list[Path]:
    """The files that hold article `article_id` on its own (not inside a .jsonl bundle)."""
    found = [articles_dir / f"{article_id}{suffix}" for suffix in SUPPORTED if suffix != ".jsonl"]
    found.append(articles_dir / f"{article_id}{META_SUFFIX}")
    return [path for path in found if path.is_file()]


def _replace(articles_dir: Path, article_id: str, new_files: dict[str, bytes]) -> None:
    """Write the new files, then remove the article's other files (e.g. an old .html)."""
    old = files_of(articles_dir, article_id)
    for name, data in new_files.items():
        write_atomic(articles_dir / name, data)
    for path in old:
        if path.name not in new_files:
            path.unlink(missing_ok=True)


def save_json_article(articles_dir: Path, article_id: str, text: str, metadata: dict) -> None:
    """A .txt with a .meta.json sidecar, the folder's plain format."""
    make_article(article_id, text, metadata)  # raises ArticleFormatError with the reason
    meta = {k: v for k, v in metadata.items() if v is not None}
    files = {f"{article_id}.txt": text.encode("utf-8")}
    if meta:
        files[f"{article_id}{META_SUFFIX}"] = json.dumps(meta, ensure_ascii=False, indent=1).encode()
    _replace(articles_dir, article_id, files)


def save_uploaded_article(articles_dir: Path, article_id: str, suffix: str, data: bytes) -> None:
    """An uploaded .txt/.md/.html file, parsed first so a bad file changes nothing."""
    suffix = suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise ArticleFormatError(
            f"unsupported file type {suffix or '(none)'!r}; upload one of {', '.join(UPLOAD_SUFFIXES)}"
        )
    if b"\x00" in data:
        raise ArticleFormatError("the file is binary, not text")
    with tempfile.TemporaryDirectory() as scratch:
        probe = Path(scratch) / f"{article_id}{suffix}"
        probe.write_bytes(data)
        try:
            items = list(load_file(probe))  # raises ArticleFormatError with the reason
        except UnicodeDecodeError as exc:
            raise ArticleFormatError("the file is not UTF-8 text") from exc
    # An upload is refused for a bad link, as a JSON article is (a folder's file is kept
    # without it): the sender is there to fix it.
    if any(isinstance(item, Notice) for item in items):
        raise ArticleFormatError("its url must be an absolute http or https URL")
    (article,) = items
    if article.id != article_id:  # a Markdown front matter `id:` would file it elsewhere
        raise ArticleFormatError(f"the file's front matter says id {article.id!r}, not {article_id!r}")
    _replace(articles_dir, article_id, {f"{article_id}{suffix}": data})


def delete_article(articles_dir: Path, article_id: str) -> bool:
    """Remove the article's files; False when it has none of its own."""
    paths = files_of(articles_dir, article_id)
    for path in paths:
        path.unlink(missing_ok=True)
    return bool(paths)
