"""The judging flow of /admin (issue 34) in a real headless Chromium, against the real service
(`qa-serve` in a subprocess, with QA_ADMIN_TOKEN set) over an index of the sample articles plus
one article whose text starts with emoji, so that code-point offsets (Python, the API) and
UTF-16 offsets (JS, the page) differ, and one with no title (no metadata file), which the
article picker lists by its id.

Questions are asked through POST /ask first so that the question log holds them; each test asks
its own wordings and finds them in the queue by text, so no test depends on another's order.
What the page stored is checked through the API (GET /admin/judging?include_judged=true).
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Iterator

import pytest

from tests.test_widget_browser import (  # noqa: F401  (browser, open_page, watch are fixtures)
    HOSTILE_ID,
    HOSTILE_META,
    HOSTILE_QUESTION,
    HOSTILE_TEXT,
    OUT_OF_SCOPE,
    _screenshot,
    browser,
    expect,
    open_page,
    watch,
)

from index.settings import Settings  # noqa: E402
from ingest.pipeline import run_ingest  # noqa: E402
from tests.conftest import SAMPLE_ARTICLES, free_port, start_qa_serve, stop_process  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TOKEN = "judging-admin-token-34"
EDITOR = "Test Editor"
# Words of the emoji-led article, after its emoji: their offsets differ between Python and JS.
SELECTED = "polish the brass lanterns with beeswax every Sunday"
# An article with no metadata, so no title; emoji first here too.
UNTITLED_ID = "zz_untitled_parish_notes"
UNTITLED_TEXT = (
    "\U0001F4EF\U0001F570 Parish notes.\n"
    "The parish council met in the old school hall on Tuesday. "
    "The church clock has stood at twenty past four since the March storm. "
    "A stonemason from Kirkwall will look at the bell tower in the spring.\n"
)
UNTITLED_SENTENCE = "The church clock has stood at twenty past four since the March storm."
# Nothing in the archive answers it: the service abstains and shows no passages.
UNANSWERED = "What is the melting point of osmium?"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, encoder) -> Iterator[str]:
    """`qa-serve` with the admin token, its own index and its own question log."""
    work = tmp_path_factory.mktemp("judging-service")
    articles = work / "articles"
    shutil.copytree(SAMPLE_ARTICLES, articles)
    (articles / f"{HOSTILE_ID}.txt").write_text(HOSTILE_TEXT, encoding="utf-8")
    (articles / f"{HOSTILE_ID}.meta.json").write_text(json.dumps(HOSTILE_META), encoding="utf-8")
    (articles / f"{UNTITLED_ID}.txt").write_text(UNTITLED_TEXT, encoding="utf-8")
    index_dir = work / "index"
    run_ingest(articles, Settings(index_dir=index_dir), encoder=encoder, progress=False)
    port = free_port()
    process = start_qa_serve(articles, index_dir, port, work / "serve.log", QA_ADMIN_TOKEN=TOKEN)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


# ---- helpers ---------------------------------------------------------------------------------


def call(api: str, method: str, path: str, body: dict | None = None, *, raw: bool = False):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{api}{path}", data=data, method=method)
    request.add_header("Authorization", f"Bearer {TOKEN}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=60) as response:
        content = response.read()
    return content if raw else json.loads(content)


def ask(api: str, *questions: str) -> None:
    """Ask through POST /ask, as a reader would, so that the question log holds them."""
    for question in questions:
        call(api, "POST", "/ask", {"question": question})


def queued(api: str, question: str) -> dict:
    """The question as GET /admin/judging lists it, judged or not."""
    listed = call(api, "GET", "/admin/judging?include_judged=true")["questions"]
    found = [q for q in listed if q["question"] == question]
    assert found, f"{question!r} is not in the judging queue"
    return found[0]


def open_admin(open_page, api: str):
    """/admin with the token given through the form; returns the page once the queue is shown."""
    page = open_page(f"{api}/admin")
    expect(page.locator("#judge")).to_be_hidden()
    page.locator("#token").fill(TOKEN)
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#judge")).to_be_visible()
    expect(page.locator("#position")).to_contain_text("Question 1 of")
    return page


def go_to(page, question: str, *, keys: bool = False) -> None:
    """Step through the queue (buttons, or j/k) until `question` is shown."""
    text = page.locator("#question-text")
    previous, following = ("k", "j") if keys else ("#prev", "#next")

    def step(which: str) -> None:
        if keys:
            page.keyboard.press(which)
        else:
            page.locator(which).click()

    while not page.locator("#prev").is_disabled():
        step(previous)
    for _ in range(50):
        if text.text_content() == question:
            return
        assert not page.locator("#next").is_disabled(), f"{question!r} is not in the page's queue"
        step(following)
    raise AssertionError(f"{question!r} not reached")


def select_with_mouse(page, words: str) -> None:
    """Select `words` in the article view with the mouse, from the middle of the first letter to
    that of the last (the words are found in the view's text, across its text nodes)."""
    first, last = page.evaluate(
        """([box, from]) => {
            const el = document.querySelector(box), walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
            const full = el.textContent, a = full.indexOf(from), b = a + from.length - 1;
            const rects = [];
            let pos = 0, node;
            while ((node = walker.nextNode())) {
              for (const at of [a, b]) {
                if (at >= pos && at < pos + node.data.length) {
                  const r = document.createRange();
                  r.setStart(node, at - pos); r.setEnd(node, at - pos + 1);
                  rects.push(r.getBoundingClientRect());
                }
              }
              pos += node.data.length;
            }
            return rects.map(r => ({x: r.left, y: r.top + r.height / 2, w: r.width}));
        }""",
        ["#article-box", words],
    )
    page.mouse.move(first["x"] + 1, first["y"])
    page.mouse.down()
    page.mouse.move(last["x"] + last["w"] - 1, last["y"], steps=8)
    page.mouse.up()
    assert page.evaluate("getSelection().toString()") == words


def posted(page):
    return page.expect_response(lambda r: r.url.endswith("/admin/judgments") and r.request.method == "POST")


# ---- tests -----------------------------------------------------------------------------------


def test_mark_a_passage_not_in_the_archive_and_undo(api: str, open_page) -> None:
    answerable, unanswerable = "How much have A&E visits gone up?", OUT_OF_SCOPE
    ask(api, answerable, unanswerable)
    first = queued(api, answerable)["passages"][0]

    # Nothing about judging is shown for a wrong token.
    page = open_page(f"{api}/admin")
    requests = []
    page.on("request", lambda r: requests.append(r))
    page.locator("#token").fill("not-the-token")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#status")).to_have_text("That token is not the admin token.")
    expect(page.locator("#judge")).to_be_hidden()

    page.locator("#token").fill(TOKEN)
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#judge")).to_be_visible()
    expect(page.locator("#judge")).to_contain_text("not in the archive")  # the keys are listed
    page.locator("#judge-name").fill(EDITOR)

    # "This answers it" on the first passage the service showed.
    go_to(page, answerable)
    shown = page.locator("#passages li").first
    expect(shown.locator(".passage-text")).to_have_text(first["text"])
    with posted(page) as saved:
        shown.get_by_role("button", name="This answers it").click()
    assert saved.value.status == 201
    assert saved.value.request.post_data_json["judge"] == EDITOR
    expect(page.locator("#question-text")).not_to_have_text(answerable)  # on to the next question
    expect(page.locator("#judge-status")).to_contain_text("Saved")
    [judgment] = queued(api, answerable)["judgments"]
    assert (judgment["verdict"], judgment["article_id"], judgment["judge"]) == ("answers", first["article_id"], EDITOR)
    assert first["start"] <= judgment["start"] < judgment["end"] <= first["end"]
    assert judgment["text"] and judgment["text"] in first["text"]

    # "Not in the archive", then "Undo": the judgment is gone and the question is shown again.
    go_to(page, unanswerable)
    with posted(page) as saved:
        page.get_by_role("button", name="Not in the archive").click()
    assert saved.value.status == 201
    [judgment] = queued(api, unanswerable)["judgments"]
    assert judgment["verdict"] == "not_in_archive" and judgment["judge"] == EDITOR
    expect(page.locator("#question-text")).not_to_have_text(unanswerable)
    with page.expect_response(lambda r: r.request.method == "DELETE") as undone:
        page.get_by_role("button", name="Undo").click()
    assert undone.value.status == 200 and undone.value.url.endswith(f"/admin/judgments/{judgment['id']}")
    expect(page.locator("#question-text")).to_have_text(unanswerable)
    expect(page.locator("#judge-status")).to_contain_text("Undone")
    assert queued(api, unanswerable)["judgments"] == []
    assert len(queued(api, answerable)["judgments"]) == 1  # the other judgment stays

    # The token travelled only in the Authorization header.
    admin_calls = [r for r in requests if "/admin/" in r.url]
    assert admin_calls and all(TOKEN not in r.url for r in requests)
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in admin_calls[-4:])
    _screenshot(page, "admin-judging-1280x800.png")


def test_mark_a_selection_in_the_article_view(api: str, open_page) -> None:
    ask(api, HOSTILE_QUESTION)
    article = call(api, "GET", f"/articles/{HOSTILE_ID}")
    start = article["text"].index(SELECTED)
    end = start + len(SELECTED)
    assert any(ord(c) > 0xFFFF for c in article["text"][:start])  # code points and UTF-16 differ here

    page = open_admin(open_page, api)
    go_to(page, HOSTILE_QUESTION)
    [shown] = [p for p in queued(api, HOSTILE_QUESTION)["passages"] if p["article_id"] == HOSTILE_ID][:1]
    passage = page.locator("#passages li").filter(has_text="Lantern care").first
    passage.get_by_role("button", name="Show in the article").click()

    # The whole article, the shown passage marked.
    box = page.locator("#article-box")
    expect(box.locator("mark")).to_have_text(shown["text"])
    assert box.text_content() == article["text"]
    expect(page.get_by_role("button", name="Mark selection as the answer")).to_be_disabled()

    # Select the words with the mouse, from the middle of the first letter to that of the last.
    select_with_mouse(page, SELECTED)
    expect(page.locator("#selection-note")).to_contain_text(f"{len(SELECTED)} characters selected")
    _screenshot(page, "admin-judging-article-1280x800.png")

    with posted(page) as saved:
        page.get_by_role("button", name="Mark selection as the answer").click()
    assert saved.value.status == 201
    sent = saved.value.request.post_data_json
    assert (sent["verdict"], sent["article_id"], sent["start"], sent["end"]) == ("answers", HOSTILE_ID, start, end)
    [judgment] = queued(api, HOSTILE_QUESTION)["judgments"]
    assert (judgment["start"], judgment["end"], judgment["text"]) == (start, end, SELECTED)
    expect(page.locator("#article-view")).to_be_hidden()
    expect(page.locator("#question-text")).not_to_have_text(HOSTILE_QUESTION)


def test_mark_a_sentence_of_any_article_for_an_unanswered_question(api: str, open_page) -> None:
    ask(api, UNANSWERED)
    item = queued(api, UNANSWERED)
    assert (item["confidence"], item["reason"], item["passages"]) == ("none", "unanswered", [])
    listed = call(api, "GET", "/articles?limit=1000")
    assert listed["total"] == len(listed["articles"])
    labels = {a["id"]: a["title"] or a["id"] for a in listed["articles"]}
    article = call(api, "GET", f"/articles/{UNTITLED_ID}")
    assert article["title"] is None
    start = article["text"].index(UNTITLED_SENTENCE)
    end = start + len(UNTITLED_SENTENCE)
    assert any(ord(c) > 0xFFFF for c in article["text"][:start])  # code points and UTF-16 differ here

    page = open_admin(open_page, api)
    go_to(page, UNANSWERED, keys=True)
    expect(page.locator("#passages")).to_have_text("The service showed no passages for this question.")

    # The picker lists every article of the archive: by title (as text, markup and all), by id
    # where there is none; `a` focuses it.
    picker = page.get_by_label("Find the answer in an article")
    expect(picker).to_be_enabled()
    options = picker.locator("option:not([value=''])")
    expect(options).to_have_count(len(labels))
    assert dict(zip(options.evaluate_all("os => os.map(o => o.value)"),
                    options.all_text_contents(), strict=True)) == labels
    assert labels[HOSTILE_ID] == HOSTILE_META["title"] and labels[UNTITLED_ID] == UNTITLED_ID
    page.keyboard.press("a")
    assert page.evaluate("document.activeElement.id") == "article-pick"

    # Open the untitled article from the picker: the whole text, nothing marked.
    picker.select_option(UNTITLED_ID)
    box = page.locator("#article-box")
    expect(page.locator("#article-title")).to_have_text(UNTITLED_ID)
    expect(box).to_have_text(article["text"], use_inner_text=False)
    assert box.text_content() == article["text"]
    expect(box.locator("mark")).to_have_count(0)
    mark = page.get_by_role("button", name="Mark selection as the answer")
    expect(mark).to_be_disabled()

    select_with_mouse(page, UNTITLED_SENTENCE)
    expect(page.locator("#selection-note")).to_contain_text(f"{len(UNTITLED_SENTENCE)} characters selected")
    _screenshot(page, "admin-judging-picker-1280x800.png")
    with posted(page) as saved:
        mark.click()
    assert saved.value.status == 201
    [judgment] = queued(api, UNANSWERED)["judgments"]
    assert (judgment["verdict"], judgment["article_id"]) == ("answers", UNTITLED_ID)
    assert (judgment["start"], judgment["end"], judgment["text"]) == (start, end, UNTITLED_SENTENCE)
    expect(page.locator("#article-view")).to_be_hidden()
    expect(page.locator("#question-text")).not_to_have_text(UNANSWERED)
    expect(picker).to_have_value("")


def test_judging_with_the_keyboard_only(api: str, open_page) -> None:
    question = "who argues against means-testing?"
    ask(api, question)
    first = queued(api, question)["passages"][0]

    page = open_page(f"{api}/admin")
    page.locator("#token").focus()
    page.keyboard.type(TOKEN)
    page.keyboard.press("Enter")
    expect(page.locator("#position")).to_contain_text("Question 1 of")
    assert page.evaluate("document.activeElement.id") == "question"  # ready for the keys

    go_to(page, question, keys=True)
    assert page.evaluate("document.activeElement.id") == "question"
    assert page.evaluate("document.activeElement.matches(':focus-visible')")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"

    with posted(page) as saved:
        page.keyboard.press("1")
    assert saved.value.status == 201
    expect(page.locator("#question-text")).not_to_have_text(question)
    [judgment] = queued(api, question)["judgments"]
    assert (judgment["verdict"], judgment["article_id"]) == ("answers", first["article_id"])
    assert first["start"] <= judgment["start"] < judgment["end"] <= first["end"]

    with page.expect_response(lambda r: r.request.method == "DELETE"):
        page.keyboard.press("u")
    expect(page.locator("#question-text")).to_have_text(question)
    assert queued(api, question)["judgments"] == []

    with posted(page):
        page.keyboard.press("n")
    [judgment] = queued(api, question)["judgments"]
    assert judgment["verdict"] == "not_in_archive"
    expect(page.locator("#question-text")).not_to_have_text(question)  # moved on, as after "1"
    page.keyboard.press("k")
    expect(page.locator("#question-text")).to_have_text(question)
    expect(page.locator("#question-judgments")).to_contain_text("not in the archive")


def test_summary_and_export(api: str, open_page) -> None:
    question = "Who should run health and social care?"
    ask(api, question)
    item = queued(api, question)
    passage = item["passages"][0]
    call(api, "POST", "/admin/judgments", {
        "question_id": item["question_id"], "verdict": "answers", "article_id": passage["article_id"],
        "start": passage["start"], "end": passage["end"], "judge": None,
    })
    summary = call(api, "GET", "/admin/judgments/summary?weeks=2")

    page = open_admin(open_page, api)
    rows = page.locator("#summary-table tbody tr")
    expect(rows).to_have_count(len(summary["weeks"]))
    expect(rows.first).to_contain_text("this week")
    expect(rows.first).to_contain_text(summary["weeks"][0]["week_start"])
    expect(page.locator("#summary-totals")).to_contain_text(f"{summary['judged']} judgment")

    with page.expect_download() as download:
        page.get_by_role("button", name="Download the judgments").click()
    assert download.value.suggested_filename.endswith(".jsonl")
    exported = [json.loads(line) for line in open(download.value.path(), encoding="utf-8") if line.strip()]
    assert exported == [json.loads(line) for line in call(api, "GET", "/admin/judgments/export", raw=True).splitlines()
                        if line.strip()]
    [row] = [r for r in exported if r["question"] == question]
    assert row["article"] == passage["article_id"] and row["must_contain_any"]
