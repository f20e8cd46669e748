"""Tests for ingest/load.py: each test writes small files into tmp_path and loads them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.load import load_file, load_folder


def _write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8"))
    return path


def _only_article(result):
    assert result.skipped == []
    assert len(result.articles) == 1
    return result.articles[0]


# --- .txt ---------------------------------------------------------------------------------


def test_txt_id_is_stem_and_text_is_verbatim(tmp_path):
    text = "First paragraph of the piece.\n\n  Indented second paragraph – with a dash.\n"
    _write(tmp_path, "my-article_1.txt", text)
    article = _only_article(load_folder(tmp_path))
    assert article.id == "my-article_1"
    assert article.text == text
    assert article.title is None and article.author is None


def test_txt_crlf_is_normalised_to_newline(tmp_path):
    _write(tmp_path, "crlf.txt", "Line one.\r\nLine two.\r\n\r\nLine three.")
    article = _only_article(load_folder(tmp_path))
    assert article.text == "Line one.\nLine two.\n\nLine three."


def test_txt_sidecar_gives_title_and_author(tmp_path):
    _write(tmp_path, "story.txt", "The body of the story.")
    _write(tmp_path, "story.meta.json", json.dumps({"title": "A Story", "author": "Ann Writer"}))
    article = _only_article(load_folder(tmp_path))
    assert article.id == "story"
    assert article.title == "A Story"
    assert article.author == "Ann Writer"
    assert article.text == "The body of the story."


def test_empty_or_whitespace_txt_is_skipped_with_no_text(tmp_path):
    _write(tmp_path, "blank.txt", "  \n\t\n  ")
    _write(tmp_path, "empty.txt", "")
    result = load_folder(tmp_path)
    assert result.articles == []
    assert sorted(Path(s.source).name for s in result.skipped) == ["blank.txt", "empty.txt"]
    assert all("no text" in s.reason for s in result.skipped)


def test_binary_file_with_txt_suffix_is_skipped(tmp_path):
    _write(tmp_path, "image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01")
    result = load_folder(tmp_path)
    assert result.articles == []
    assert len(result.skipped) == 1
    assert Path(result.skipped[0].source).name == "image.txt"
    assert "binary" in result.skipped[0].reason


def test_unsupported_suffix_is_reported_as_skipped(tmp_path):
    _write(tmp_path, "report.pdf", b"%PDF-1.4 not really a pdf")
    _write(tmp_path, "ok.txt", "Readable text.")
    result = load_folder(tmp_path)
    assert [a.id for a in result.articles] == ["ok"]
    assert len(result.skipped) == 1
    assert Path(result.skipped[0].source).name == "report.pdf"
    assert "unsupported" in result.skipped[0].reason and ".pdf" in result.skipped[0].reason


def test_file_over_max_bytes_is_skipped(tmp_path):
    _write(tmp_path, "big.txt", "word " * 100)  # 500 bytes
    _write(tmp_path, "small.txt", "tiny")
    result = load_folder(tmp_path, max_bytes=100)
    assert [a.id for a in result.articles] == ["small"]
    assert len(result.skipped) == 1
    assert Path(result.skipped[0].source).name == "big.txt"
    assert "larger than 100 bytes" in result.skipped[0].reason


# --- .md ----------------------------------------------------------------------------------


def test_markdown_front_matter_gives_metadata_and_id_override(tmp_path):
    md = (
        "---\n"
        "id: custom-id\n"
        "title: Local Care Matters\n"
        "author: Jo Bloggs\n"
        "date: 2021-03-04\n"
        "url: https://example.org/local-care\n"
        "---\n"
        "# Local Care Matters\n\nThe body starts here.\n"
    )
    _write(tmp_path, "post.md", md)
    article = _only_article(load_folder(tmp_path))
    assert article.id == "custom-id"
    assert article.title == "Local Care Matters"
    assert article.author == "Jo Bloggs"
    assert article.date == "2021-03-04"
    assert article.url == "https://example.org/local-care"
    assert article.text == "# Local Care Matters\n\nThe body starts here.\n"
    assert "---" not in article.text and "author:" not in article.text


def test_markdown_with_broken_yaml_is_skipped_naming_yaml(tmp_path):
    _write(tmp_path, "broken.md", "---\ntitle: [unclosed\nauthor: x: y\n---\nBody text.\n")
    result = load_folder(tmp_path)
    assert result.articles == []
    assert len(result.skipped) == 1
    assert Path(result.skipped[0].source).name == "broken.md"
    assert "YAML" in result.skipped[0].reason


# --- .html --------------------------------------------------------------------------------

_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Rebuilding Community Health Services</title>
  <meta name="author" content="Priya Raman">
</head>
<body>
  <nav class="site-nav">
    <ul>
      <li><a href="/">Home</a></li>
      <li><a href="/topics">Topics</a></li>
      <li><a href="/zzqx-nav-junk">Zzqx Navigation Junk Link</a></li>
    </ul>
  </nav>
  <main>
    <article>
      <h1>Rebuilding Community Health Services</h1>
      <p>District nurses in the northern towns have seen their caseloads double over the past
      decade, while the number of community beds has fallen by nearly a third.</p>
      <p>Local councils argue that prevention budgets were the first to be cut when money became
      tight, leaving families to manage long-term conditions with little support at home.</p>
      <p>A pilot scheme in two boroughs now pairs each general practice with a named social worker,
      and early figures suggest emergency admissions among older patients have started to fall.</p>
    </article>
  </main>
  <footer>
    <p>Qqzx footer junk: contact the webmaster for syndication enquiries.</p>
  </footer>
</body>
</html>
"""


def test_html_extracts_paragraphs_title_author_and_drops_nav_footer(tmp_path):
    _write(tmp_path, "community-health.html", _HTML)
    article = _only_article(load_folder(tmp_path))
    assert article.id == "community-health"
    assert article.title == "Rebuilding Community Health Services"
    assert article.author == "Priya Raman"
    assert "caseloads double over the past decade" in " ".join(article.text.split())
    assert "prevention budgets were the first to be cut" in " ".join(article.text.split())
    assert "named social worker" in article.text
    assert "Zzqx" not in article.text
    assert "Qqzx" not in article.text


# --- .jsonl -------------------------------------------------------------------------------


def test_jsonl_loads_good_lines_and_reports_bad_ones_by_line(tmp_path):
    lines = [
        json.dumps({"id": "a1", "text": "First article text.", "title": "One"}),
        json.dumps({"id": "a2", "text": "Second article text.", "author": "Sam Lee"}),
        '{"id": "a3", "text": "broken',
        json.dumps({"text": "No id on this line."}),
    ]
    _write(tmp_path, "batch.jsonl", "\n".join(lines) + "\n")
    result = load_folder(tmp_path)
    assert [a.id for a in result.articles] == ["a1", "a2"]
    assert result.articles[0].title == "One"
    assert result.articles[1].author == "Sam Lee"
    sources = [s.source for s in result.skipped]
    assert len(sources) == 2
    assert sources[0].endswith("batch.jsonl:3")
    assert sources[1].endswith("batch.jsonl:4")
    assert "JSON" in result.skipped[0].reason
    assert "id" in result.skipped[1].reason


def test_jsonl_invalid_ids_are_skipped(tmp_path):
    lines = [
        json.dumps({"id": "../etc/passwd", "text": "Path traversal attempt."}),
        json.dumps({"id": "has space", "text": "Space in the id."}),
        json.dumps({"id": ".hidden", "text": "Starts with a dot."}),
        json.dumps({"id": "fine_id-1.0", "text": "A valid one."}),
    ]
    path = _write(tmp_path, "ids.jsonl", "\n".join(lines))
    items = list(load_file(path))
    assert [getattr(item, "id", None) for item in items] == [None, None, None, "fine_id-1.0"]
    skipped = items[:3]
    assert [s.source.rsplit(":", 1)[1] for s in skipped] == ["1", "2", "3"]
    assert all("not valid" in s.reason for s in skipped)


# --- duplicates and hashing ---------------------------------------------------------------


def test_duplicate_id_keeps_first_and_reports_second(tmp_path):
    _write(tmp_path, "a-dup.txt", "Text from the txt file.")
    _write(tmp_path, "b.jsonl", json.dumps({"id": "a-dup", "text": "Text from the jsonl."}) + "\n")
    result = load_folder(tmp_path)
    assert len(result.articles) == 1
    assert result.articles[0].text == "Text from the txt file."
    assert len(result.skipped) == 1
    assert Path(result.skipped[0].source).name == "b.jsonl"
    assert "duplicate" in result.skipped[0].reason and "a-dup" in result.skipped[0].reason


def _hash_of(folder: Path, text: str, meta: dict | None) -> str:
    _write(folder, "h.txt", text)
    sidecar = folder / "h.meta.json"
    if meta is None:
        sidecar.unlink(missing_ok=True)
    else:
        _write(folder, "h.meta.json", json.dumps(meta))
    return _only_article(load_folder(folder)).content_hash


def test_content_hash_is_stable_and_changes_with_text_or_metadata(tmp_path):
    base = _hash_of(tmp_path, "Same words.", {"title": "T", "author": "A B"})
    assert _hash_of(tmp_path, "Same words.", {"title": "T", "author": "A B"}) == base
    assert _hash_of(tmp_path, "Same words!", {"title": "T", "author": "A B"}) != base
    assert _hash_of(tmp_path, "Same words.", {"title": "T2", "author": "A B"}) != base
    assert _hash_of(tmp_path, "Same words.", {"title": "T", "author": "C D"}) != base
    assert _hash_of(tmp_path, "Same words.", None) != base


# --- links ----------------------------------------------------------------------------------

_BAD_URLS = ["javascript:alert(document.cookie)", "data:text/html,<script>alert(1)</script>",
             "/news/2024/relative-page", "ftp://files.example.org/article.txt"]


def _with_url(folder: Path, kind: str, url: str) -> None:
    text = "District nurses in the northern towns have seen their caseloads double."
    if kind == "meta.json":
        _write(folder, "linked.txt", text)
        _write(folder, "linked.meta.json", json.dumps({"title": "Nurses", "url": url}))
    elif kind == "front matter":
        _write(folder, "linked.md", f"---\ntitle: Nurses\nurl: '{url}'\n---\n{text}\n")
    elif kind == "html":
        page = _HTML.replace('<meta name="author"', f'<link rel="canonical" href="{url}">\n  <meta name="author"')
        _write(folder, "linked.html", page)
    else:
        _write(folder, "linked.jsonl", json.dumps({"id": "linked", "text": text, "url": url}) + "\n")


@pytest.mark.parametrize("kind", ["meta.json", "front matter", "html", "jsonl"])
@pytest.mark.parametrize("url", _BAD_URLS)
def test_a_link_that_is_not_http_is_left_out_with_a_notice_naming_the_article(
    tmp_path: Path, kind: str, url: str
) -> None:
    _with_url(tmp_path, kind, url)
    result = load_folder(tmp_path)
    article = _only_article(result)
    assert article.url is None
    (notice,) = result.notices
    assert "'linked'" in notice.message and "left out" in notice.message
    assert url[:20] in notice.message and Path(notice.source.split(":")[0]).name.startswith("linked")


@pytest.mark.parametrize("kind", ["meta.json", "front matter", "html", "jsonl"])
def test_an_http_link_is_kept(tmp_path: Path, kind: str) -> None:
    _with_url(tmp_path, kind, "https://news.example.org/2024/nurses")
    result = load_folder(tmp_path)
    assert _only_article(result).url == "https://news.example.org/2024/nurses"
    assert result.notices == []
