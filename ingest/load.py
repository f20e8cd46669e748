"""Read articles from a folder: .txt, .md with YAML front matter, .html (trafilatura), .jsonl
(one article per line); a <stem>.meta.json beside a .txt or .html file gives its metadata.
Files that cannot be read are reported with the reason and skipped."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from index.records import ARTICLE_ID_RULE, ArticleRecord, is_valid_article_id, web_link

META_SUFFIX = ".meta.json"
SUPPORTED = (".txt", ".md", ".markdown", ".html", ".htm", ".jsonl")
METADATA_FIELDS = ("title", "author", "date", "url", "source")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)


class ArticleFormatError(ValueError):
    """One article (or file) cannot be used; the message says why."""


@dataclass(frozen=True)
class Skipped:
    source: str
    reason: str


@dataclass(frozen=True)
class Notice:
    """Something of an article that was not kept, though the article was."""

    source: str
    message: str


@dataclass
class LoadResult:
    articles: list[ArticleRecord] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)


def content_hash(text: str, metadata: dict[str, Any]) -> str:
    payload = json.dumps({"text": text, **metadata}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def make_article(article_id: str, text: str, metadata: dict[str, Any]) -> ArticleRecord:
    """Validate and normalise one article; raise ArticleFormatError with the reason. A `url`
    that is not an absolute http(s) link is left out."""
    if not is_valid_article_id(article_id):
        raise ArticleFormatError(f"article id {article_id!r} is not valid: {ARTICLE_ID_RULE}")
    if not isinstance(text, str) or not text.strip():
        raise ArticleFormatError("the article has no text")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    meta = {}
    for key in METADATA_FIELDS:
        value = metadata.get(key)
        if value is not None and str(value).strip():
            meta[key] = str(value).strip()
    if "url" in meta:
        link = web_link(meta.pop("url"))
        if link:
            meta["url"] = link
    return ArticleRecord(id=article_id, text=text, content_hash=content_hash(text, meta), **meta)


def _article(source: str, article_id: str, text: str, metadata: dict[str, Any]) -> Iterator[ArticleRecord | Notice]:
    """`make_article`, and a notice naming the article when its link was left out."""
    article = make_article(article_id, text, metadata)
    given = str(metadata.get("url") or "").strip()
    if given and article.url is None:
        yield Notice(source, f"article {article.id!r}: url {given[:200]!r} left out (only absolute "
                             "http or https links are kept)")
    yield article


def load_folder(folder: Path, max_bytes: int = 20_000_000) -> LoadResult:
    """Every supported file directly in `folder` (sorted, so ids and order are stable)."""
    return load_paths(article_files(folder), max_bytes)


def article_files(folder: Path) -> list[Path]:
    """The files of `folder` that may hold articles, sorted (sidecars and hidden files left out)."""
    return [p for p in sorted(folder.iterdir())
            if not p.name.startswith(".") and p.is_file() and not p.name.endswith(META_SUFFIX)]


def load_paths(paths: Sequence[Path], max_bytes: int = 20_000_000) -> LoadResult:
    """The articles in the files `paths`; a file that cannot be read is skipped with the reason."""
    return merge_reads((path, read_file(path, max_bytes)) for path in paths)


def read_file(path: Path, max_bytes: int = 20_000_000) -> list[ArticleRecord | Skipped | Notice]:
    """One file's articles, or why it (or a line of it) was skipped."""
    if not path.is_file():
        return [Skipped(str(path), "no such file")]
    if path.suffix.lower() not in SUPPORTED:
        return [Skipped(str(path), f"unsupported file type {path.suffix!r}")]
    try:
        if path.stat().st_size > max_bytes:
            raise ArticleFormatError(f"file is larger than {max_bytes} bytes")
        return list(load_file(path))
    except (ArticleFormatError, OSError, UnicodeDecodeError) as exc:
        return [Skipped(str(path), _reason(exc))]


def merge_reads(reads: Iterable[tuple[Path, list[ArticleRecord | Skipped | Notice]]]) -> LoadResult:
    """Files read (in order) into one result; a second article with an id already seen is skipped."""
    result = LoadResult()
    seen: dict[str, str] = {}
    for path, items in reads:
        for item in items:
            if isinstance(item, Skipped):
                result.skipped.append(item)
            elif isinstance(item, Notice):
                result.notices.append(item)
            elif item.id in seen:
                result.skipped.append(
                    Skipped(str(path), f"duplicate article id {item.id!r} (also in {seen[item.id]})")
                )
            else:
                seen[item.id] = str(path)
                result.articles.append(item)
    return result


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text (binary file?)"
    return str(exc)


def load_file(path: Path) -> Iterator[ArticleRecord | Skipped | Notice]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from _load_jsonl(path)
        return
    raw = path.read_bytes()
    if b"\x00" in raw[:8192]:
        raise ArticleFormatError("binary file (contains NUL bytes)")
    text = raw.decode("utf-8-sig")
    if suffix == ".txt":
        yield from _article(str(path), path.stem, text, _sidecar(path))
    elif suffix in (".md", ".markdown"):
        yield from _load_markdown(path, text)
    else:
        yield from _load_html(path, text)


def _sidecar(path: Path) -> dict[str, Any]:
    meta_path = path.with_name(path.stem + META_SUFFIX)
    if not meta_path.exists():
        return {}
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArticleFormatError(f"{meta_path.name} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise ArticleFormatError(f"{meta_path.name} must hold a JSON object")
    return meta


def _load_markdown(path: Path, text: str) -> Iterator[ArticleRecord | Notice]:
    meta: dict[str, Any] = {}
    match = _FRONT_MATTER.match(text)
    if match:
        try:
            meta = yaml.safe_load(match.group(1)) or {}
        except yaml.YAMLError as exc:
            raise ArticleFormatError(f"front matter is not valid YAML: {exc}") from exc
        if not isinstance(meta, dict):
            raise ArticleFormatError("front matter must be a YAML mapping")
        text = text[match.end() :]
    return _article(str(path), str(meta.get("id") or path.stem), text, meta)


def _load_html(path: Path, html: str) -> Iterator[ArticleRecord | Notice]:
    import trafilatura  # imported here: it is slow to import and only HTML needs it

    document = trafilatura.bare_extraction(
        html, with_metadata=True, include_comments=True, favor_recall=True, output_format="python"
    )
    if document is None:
        raise ArticleFormatError("no article text found in the HTML")
    data = document if isinstance(document, dict) else document.as_dict()
    text = data.get("text") or ""
    if data.get("comments"):
        text = f"{text}\n\nComments\n\n{data['comments']}"
    meta = {key: data.get(key) for key in ("title", "author", "date", "url")}
    # trafilatura leaves out a canonical link that is not http(s) without a word; take the
    # page's own, so that `_article` says it was left out.
    meta["url"] = meta["url"] or _declared_url(html)
    meta["source"] = data.get("sitename")
    # A sidecar (qa-sync writes one: the URL the site lists, the page's metadata) wins.
    meta.update({key: value for key, value in _sidecar(path).items() if value is not None})
    return _article(str(path), path.stem, text, meta)


def _declared_url(html: str) -> str | None:
    """The page's canonical link or og:url, as written."""
    import lxml.html  # trafilatura's own parser

    try:
        found = lxml.html.fromstring(html).xpath(
            "//link[@rel='canonical']/@href | //meta[@property='og:url']/@content"
        )
    except (ValueError, lxml.etree.ParserError):
        return None
    return str(found[0]) if found else None


def _load_jsonl(path: Path) -> Iterator[ArticleRecord | Skipped | Notice]:
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ArticleFormatError("each line must be a JSON object")
                article_id = row.get("id", row.get("_id"))
                if article_id is None:
                    raise ArticleFormatError("missing 'id'")
                yield from _article(where, str(article_id), row.get("text"), row)
            except json.JSONDecodeError as exc:
                yield Skipped(where, f"not valid JSON: {exc.msg}")
            except ArticleFormatError as exc:
                yield Skipped(where, str(exc))
