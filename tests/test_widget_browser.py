"""The chat widget in a real headless Chromium, talking to the real service (`qa-serve` in a
subprocess) over a real index of the sample articles plus one hostile article.

Third-party host pages (another origin, hostile CSS) are served by a plain static file server;
an unreachable or slow API is a real socket: a TCP forwarder that can be switched off, and a
listening socket that never answers. Screenshots go to test-artifacts/screenshots/.

Needs Debian's chromium at /usr/bin/chromium and the `playwright` Python package (its own
browser download is not used).
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "browser tests need Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="browser tests need the playwright package (pip install playwright)"
)
expect = sync_api.expect

from index.settings import Settings  # noqa: E402
from ingest.pipeline import run_ingest  # noqa: E402
from tests.conftest import (  # noqa: E402
    ANSWERING_PRECISION, REPO, SAMPLE_ARTICLES, calibrate_as_the_sample, free_port, start_qa_serve,
    stop_process,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
MAX_QUESTION_CHARS = 200  # the service is started with a low limit, to provoke a real 422

MEANS_TESTING = "who argues against means-testing?"
MEANS_TESTING_ARTICLE = "000_b56ffdfc634a8662"
OUT_OF_SCOPE = "What is the boiling point of tungsten?"
ABSTAIN_TEXT = "Nothing in the archive answers that."
LOW_CONFIDENCE_TEXT = "No clear answer in the archive. These passages may be related:"

# An article whose text and metadata carry markup: it must show up as literal text. The emoji
# come first so that code-point offsets (Python) and UTF-16 offsets (JS) differ.
HOSTILE_ID = "zz_hostile_lanterns"
HOSTILE_MARKUP = "<img src=x onerror=alert(1)>"
HOSTILE_TEXT = (
    "\U0001F6A8\U0001F56F Notes from the Orkney coast, written by the keepers themselves.\n"
    "Lighthouse keepers on Orkney polish the brass lanterns with beeswax every Sunday. "
    f"{HOSTILE_MARKUP} The keepers say beeswax stops the salt spray from pitting the brass.\n"
    "A lantern that is not polished loses a fifth of its light within a winter, the keepers "
    "reckon, and the ships offshore notice before the keepers do.\n"
)
HOSTILE_META = {
    "title": "<script>alert(2)</script> Lantern care on Orkney",
    "author": "Mallory <b onmouseover=alert(3)>Keeper</b>",
    "url": "javascript:alert(4)",
}
HOSTILE_QUESTION = "How do Orkney lighthouse keepers polish the brass lanterns?"
ADMIN_TOKEN = "widget-admin-token-91"


# ---- servers ------------------------------------------------------------------------------


def stream_events(body: str) -> dict[str, dict]:
    """The events of a POST /ask/stream body, by name (the last of each name; deltas joined)."""
    events: dict[str, dict] = {}
    deltas = []
    for block in body.split("\n\n"):
        lines = block.splitlines()
        name = next((line[6:].strip() for line in lines if line.startswith("event:")), None)
        data = "\n".join(line[5:].lstrip() for line in lines if line.startswith("data:"))
        if name and data:
            events[name] = json.loads(data)
            if name == "delta":
                deltas.append(events[name]["text"])
    events["written"] = {"text": "".join(deltas)}
    return events


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


class StaticSite:
    """A third-party web site: plain files from a folder, on its own origin."""

    def __init__(self, root: Path) -> None:
        self.root = root
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def page(self, name: str, html: str) -> str:
        (self.root / name).write_text(html, encoding="utf-8")
        return f"{self.origin}/{name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class SwitchableForwarder:
    """A TCP forwarder in front of the API that can be switched off: while off it accepts and
    drops every connection, as a proxy with a dead upstream does."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.up = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticSite]:
    s = StaticSite(tmp_path_factory.mktemp("site"))
    yield s
    s.close()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, encoder, sample_index: Path, site: StaticSite) -> Iterator[str]:
    """`qa-serve` on a free port over an index of the sample articles plus the hostile one."""
    work = tmp_path_factory.mktemp("widget-service")
    articles = work / "articles"
    shutil.copytree(SAMPLE_ARTICLES, articles)
    (articles / f"{HOSTILE_ID}.txt").write_text(HOSTILE_TEXT, encoding="utf-8")
    (articles / f"{HOSTILE_ID}.meta.json").write_text(json.dumps(HOSTILE_META), encoding="utf-8")
    index_dir = work / "index"
    run_ingest(articles, Settings(index_dir=index_dir), encoder=encoder, progress=False)
    calibrate_as_the_sample(index_dir, sample_index)  # the answers shown need confident searches

    port = free_port()
    process = start_qa_serve(
        articles, index_dir, port, work / "serve.log",
        QA_CORS_ORIGINS=json.dumps([site.origin]), QA_MAX_QUESTION_CHARS=str(MAX_QUESTION_CHARS),
        QA_ADMIN_TOKEN=ADMIN_TOKEN, QA_TARGET_PRECISION=str(ANSWERING_PRECISION),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        yield base
    finally:
        stop_process(process)


# ---- the browser ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


class Watch:
    """Collects what must never happen: dialogs (an injected alert), uncaught page errors."""

    def __init__(self) -> None:
        self.dialogs: list[str] = []
        self.errors: list[str] = []

    def attach(self, page) -> None:
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: self.errors.append(str(e)))


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def open_page(browser, watch: Watch):
    """open_page(url, viewport=DESKTOP) -> a page in a fresh context (own sessionStorage)."""
    contexts = []

    def opener(url: str, viewport: dict = DESKTOP):
        context = browser.new_context(viewport=viewport)
        context.set_default_timeout(30_000)
        context.on("page", watch.attach)  # pages the widget opens (article view) too
        contexts.append(context)
        page = context.new_page()
        page.goto(url)
        return page

    yield opener
    for context in contexts:
        context.close()
    assert watch.dialogs == [], f"a dialog fired: {watch.dialogs}"
    assert watch.errors == [], f"page errors: {watch.errors}"


def shadow_eval(page, body: str):
    """Evaluate `body` (a function of the widget's shadow root) in the page."""
    return page.evaluate(
        f"() => {{ const root = document.querySelector('article-qa-widget').shadowRoot; {body} }}"
    )


def focused_class(page) -> str | None:
    return shadow_eval(page, "const a = root.activeElement; return a ? a.className || a.tagName : null;")


def ask(page, question: str) -> None:
    page.locator("article-qa-widget textarea").fill(question)
    page.locator("article-qa-widget textarea").press("Enter")


def host_page(api_base: str, *, extra: str = "", css: str = "", in_head: bool = False) -> str:
    tag = f'<script src="{api_base}/widget.js" data-api="{api_base}" data-title="Ask us" {extra}></script>'
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Host</title>
<link rel="icon" href="data:,"><style>{css}</style>{tag if in_head else ""}</head>
<body><h1>A partner site</h1><p id="host-text">Host page text.</p>
{"" if in_head else tag}
</body></html>"""


def _screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path))
    return path


# ---- tests -----------------------------------------------------------------------------------


def test_pages_are_served(api: str) -> None:
    with urllib.request.urlopen(f"{api}/widget.js") as r:
        assert r.headers["Content-Type"].startswith("application/javascript")
        assert b"attachShadow" in r.read()
    for script in ("widget.js", "read.js", "admin.js"):  # each one file, with text.js's helpers once
        with urllib.request.urlopen(f"{api}/{script}") as r:
            body = r.read()
        assert body.count(b"function codeUnitIndex(") == 1 and b"// include:" not in body, script
    with urllib.request.urlopen(f"{api}/") as r:
        assert r.headers["Content-Type"].startswith("text/html")
        assert "script-src 'self'" in r.headers["Content-Security-Policy"]
        assert b'src="/widget.js"' in r.read()
    with urllib.request.urlopen(f"{api}/read/{MEANS_TESTING_ARTICLE}?start=1&end=5") as r:
        assert r.headers["Content-Type"].startswith("text/html")
    with pytest.raises(urllib.error.HTTPError) as bad:
        urllib.request.urlopen(f"{api}/read/..%2Fsecret")
    assert bad.value.code == 404


def test_demo_page_answers_with_citation_and_opens_article(api: str, open_page, watch: Watch) -> None:
    page = open_page(f"{api}/")
    snippet = page.locator("pre").inner_text()
    assert f'<script src="{api}/widget.js"' in snippet and f'data-api="{api}"' in snippet

    launcher = page.locator("article-qa-widget .launcher")
    expect(launcher).to_be_visible()
    panel = page.locator("article-qa-widget [role=dialog]")
    expect(panel).to_be_hidden()
    launcher.click()
    expect(panel).to_be_visible()
    assert panel.get_attribute("aria-label")
    log = page.locator("article-qa-widget [role=log]")
    assert log.get_attribute("aria-live") == "polite"

    with page.expect_response(lambda r: r.url.endswith("/ask/stream")) as answered:
        ask(page, MEANS_TESTING)
    expect(page.locator("article-qa-widget .loading")).to_have_count(0)
    data = stream_events(answered.value.text())["passages"]
    assert data["abstained"] is False

    answer = page.locator("article-qa-widget .answer")
    expect(answer).to_contain_text(data["answer"]["text"])
    expect(answer).to_contain_text("— Simon Duffy")
    # Five sources overflow the transcript: it is shown from the answer, not from its last source.
    expect(answer).to_be_in_viewport()

    # The citation to the means-testing article, with its highlighted sentence marked.
    rank, passage = next((p["rank"], p) for p in data["passages"] if p["article_id"] == MEANS_TESTING_ARTICLE)
    citation = page.locator("article-qa-widget ol.cites > li").nth(rank - 1)
    expect(citation.locator("summary")).to_contain_text(passage["title"])
    expect(citation.locator("summary")).to_contain_text(passage["speaker"])
    mark = citation.locator("mark")
    expect(mark).to_be_hidden()  # collapsed until opened
    citation.locator("summary").click()
    expect(mark).to_be_visible()
    h = passage["highlight"]
    assert mark.inner_text() == passage["text"][h["start"]:h["end"]]
    assert "means-testing" in mark.inner_text()
    assert citation.locator(".passage").inner_text() == passage["text"]
    shot = _screenshot(page, "widget-desktop-1280x800.png")
    assert shot.stat().st_size > 10_000

    # "Read in the article" opens the article view with the passage marked and in view.
    link = citation.locator("a.read")
    assert link.get_attribute("href") == (
        f"{api}/read/{MEANS_TESTING_ARTICLE}?start={passage['start']}&end={passage['end']}")
    with page.context.expect_page() as opened:
        link.click()
    article_page = opened.value
    article_page.set_viewport_size(DESKTOP)
    marked = article_page.locator("mark#passage")
    expect(marked).to_be_visible()
    article = _get_json(f"{api}/articles/{MEANS_TESTING_ARTICLE}")
    assert marked.inner_text() == article["text"][passage["start"]:passage["end"]]
    expect(article_page.locator("h1")).to_have_text(article["title"])
    expect(marked).to_be_in_viewport()
    assert article_page.evaluate("document.activeElement.id") == "passage"
    assert article_page.locator("#text").text_content() == article["text"]
    _screenshot(article_page, "article-view-1280x800.png")


def test_follow_up_sends_history_and_conversation_survives_reload(api: str, open_page) -> None:
    page = open_page(f"{api}/")
    bodies: list[dict] = []
    page.on("request", lambda r: bodies.append(r.post_data_json) if r.url.endswith("/ask/stream") else None)
    page.locator("article-qa-widget .launcher").click()
    ask(page, MEANS_TESTING)
    expect(page.locator("article-qa-widget .msg.bot")).to_have_count(1)
    first_answer = page.locator("article-qa-widget .answer-text").first.inner_text()

    follow_up = "What does he say about taxation?"
    ask(page, follow_up)
    expect(page.locator("article-qa-widget .msg.bot")).to_have_count(2)
    assert bodies[0] == {"question": MEANS_TESTING, "top_k": 5}
    assert bodies[1]["question"] == follow_up
    assert bodies[1]["history"] == [
        {"role": "user", "content": MEANS_TESTING},
        {"role": "assistant", "content": first_answer},
    ]
    expect(page.locator("article-qa-widget .msg.bot").nth(1).locator("ol.cites > li").first).to_be_visible()

    # Reload: the panel is still open with the whole conversation, and follow-ups still
    # carry it.
    page.reload()
    expect(page.locator("article-qa-widget [role=dialog]")).to_be_visible()
    expect(page.locator("article-qa-widget .msg.user")).to_have_count(2)
    expect(page.locator("article-qa-widget .msg.bot")).to_have_count(2)
    expect(page.locator("article-qa-widget .msg.user").nth(1)).to_contain_text(follow_up)
    bodies.clear()
    ask(page, "And who disagrees with him?")
    expect(page.locator("article-qa-widget .msg.bot")).to_have_count(3)
    assert [t["content"] for t in bodies[0]["history"] if t["role"] == "user"] == [MEANS_TESTING, follow_up]

    # "New chat" empties it.
    page.locator("article-qa-widget button.clear").click()
    expect(page.locator("article-qa-widget .msg")).to_have_count(0)
    page.reload()
    expect(page.locator("article-qa-widget .msg")).to_have_count(0)


def test_feedback_control_reaches_the_question_log(api: str, open_page) -> None:
    question = "How much have A&E visits gone up?"
    page = open_page(f"{api}/")
    page.locator("article-qa-widget .launcher").click()
    with page.expect_response(lambda r: r.url.endswith("/ask/stream")) as answered:
        ask(page, question)
    answer_id = stream_events(answered.value.text())["passages"]["answer_id"]
    feedback = page.locator("article-qa-widget .msg.bot .feedback").last
    expect(feedback).to_contain_text("Was this helpful?")
    no = feedback.get_by_role("button", name="No")
    expect(no).to_have_attribute("aria-pressed", "false")
    with page.expect_response(lambda r: r.url.endswith("/feedback")) as sent:
        no.click()
    assert sent.value.status == 200
    assert sent.value.request.post_data_json == {"answer_id": answer_id, "helpful": False}
    expect(no).to_have_attribute("aria-pressed", "true")
    expect(feedback.locator(".feedback-status")).to_have_text("Thanks for telling us.")

    # The editors see it among the unanswered questions; the choice survives a reload.
    request = urllib.request.Request(f"{api}/admin/insights", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        unanswered = [g["question"] for g in json.loads(response.read())["unanswered"]]
    assert question in unanswered
    page.reload()
    expect(page.locator("article-qa-widget .msg.bot .feedback").last.get_by_role("button", name="No")).to_have_attribute(
        "aria-pressed", "true")

    # /admin: nothing shown until the admin token is given in the page (never in the URL).
    admin = open_page(f"{api}/admin")
    report = admin.locator("#report")
    expect(report).to_be_hidden()
    admin.locator("#token").fill("not-the-token")
    admin.get_by_role("button", name="Show").click()
    expect(admin.locator("#status")).to_have_text("That token is not the admin token.")
    expect(report).to_be_hidden()
    admin.locator("#token").fill(ADMIN_TOKEN)
    with admin.expect_request(lambda r: "/admin/insights" in r.url) as fetched:
        admin.get_by_role("button", name="Show").click()
    assert ADMIN_TOKEN not in fetched.value.url and fetched.value.headers["authorization"] == f"Bearer {ADMIN_TOKEN}"
    expect(report).to_be_visible()
    expect(admin.locator("#unanswered tbody")).to_contain_text(question)
    expect(admin.locator("#most-asked tbody tr").first).to_be_visible()
    days = admin.locator("#days-table tbody tr")
    expect(days).to_have_count(1)
    expect(admin.locator("#chart rect")).to_have_count(2)  # one day: all questions, and the unanswered part
    _screenshot(admin, "admin-insights-1280x800.png")


def test_out_of_scope_question_abstains(api: str, open_page) -> None:
    page = open_page(f"{api}/")
    page.locator("article-qa-widget .launcher").click()
    ask(page, OUT_OF_SCOPE)
    bot = page.locator("article-qa-widget .msg.bot")
    expect(bot).to_have_text(f"Archive: {ABSTAIN_TEXT}")
    expect(bot.locator("ol.cites")).to_have_count(0)


def test_low_confidence_shows_possibly_related_passages_without_an_answer(api: str, open_page) -> None:
    question = "What lifetime cap on care costs did the Dilnot Commission recommend?"
    served = _get_json(f"{api}/ask?q={urllib.parse.quote(question)}")
    assert served["confidence"] == "low" and served["answer"] is None and served["passages"]
    page = open_page(f"{api}/")
    page.locator("article-qa-widget .launcher").click()
    ask(page, question)
    bot = page.locator("article-qa-widget .msg.bot")
    expect(bot.locator(".unsure")).to_have_text(LOW_CONFIDENCE_TEXT)
    expect(bot.locator(".answer")).to_have_count(0)
    expect(bot.locator(".sources-label")).to_have_text("Possibly related")
    expect(bot.locator("ol.cites > li")).to_have_count(len(served["passages"]))
    # Each source shows its best sentence unopened, so the reader can judge it at a glance.
    first, h = served["passages"][0], served["passages"][0]["highlight"]
    sentence = bot.locator("ol.cites > li").first.locator("summary .sentence")
    expect(sentence).to_have_text(f"“{first['text'][h['start']:h['end']]}”")
    expect(sentence).to_be_visible()


def test_keyboard_only(api: str, open_page) -> None:
    page = open_page(f"{api}/")
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/ask/stream") else None)
    page.locator("article-qa-widget .launcher").focus()
    page.keyboard.press("Enter")
    panel = page.locator("article-qa-widget [role=dialog]")
    expect(panel).to_be_visible()
    assert focused_class(page) == "TEXTAREA"  # focus moved into the panel
    assert page.locator("article-qa-widget .launcher").get_attribute("aria-expanded") == "true"

    # Shift+Enter is a new line, Enter sends.
    page.keyboard.type("who argues")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("against means-testing?")
    assert page.locator("article-qa-widget textarea").input_value() == "who argues\nagainst means-testing?"
    assert sent == []
    page.keyboard.press("Enter")
    first = page.locator("article-qa-widget ol.cites summary").first
    expect(first).to_be_visible()
    assert len(sent) == 1

    # A citation's summary is a focusable control; Enter expands it.
    first.focus()
    page.keyboard.press("Enter")
    expect(page.locator("article-qa-widget ol.cites details").first).to_have_attribute("open", "")

    # Escape closes and gives focus back to the launcher.
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    assert focused_class(page) == "launcher"
    assert page.locator("article-qa-widget .launcher").get_attribute("aria-expanded") == "false"
    page.keyboard.press("Enter")
    expect(panel).to_be_visible()
    page.locator("article-qa-widget button.close").click()
    expect(panel).to_be_hidden()
    assert focused_class(page) == "launcher"


def test_phone_width(api: str, open_page) -> None:
    page = open_page(f"{api}/", viewport=PHONE)
    page.locator("article-qa-widget .launcher").click()
    panel = page.locator("article-qa-widget [role=dialog]")
    box = panel.bounding_box()
    assert box["x"] == 0 and box["width"] == PHONE["width"]
    ask(page, MEANS_TESTING)
    expect(page.locator("article-qa-widget .answer")).to_be_in_viewport()
    page.locator("article-qa-widget ol.cites summary").first.click()
    mark = page.locator("article-qa-widget ol.cites mark").first
    expect(mark).to_be_visible()
    assert mark.bounding_box()["x"] + mark.bounding_box()["width"] <= PHONE["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    expect(page.locator("article-qa-widget .send")).to_be_in_viewport()
    _screenshot(page, "widget-phone-360x740.png")


def test_cross_origin_host_page_with_hostile_css(api: str, site: StaticSite, open_page) -> None:
    # The page tries to hide and restyle everything; the widget must look and work the same.
    css = ("* { all: unset !important; font-size: 40px !important; color: red !important; } "
           "button, textarea, div { display: none !important; } "
           "article-qa-widget { display: none !important; position: absolute !important; left: -9999px !important; } "
           "mark { background: black !important; }")
    # In <head> without defer: the widget waits for the body. Options: position and colour.
    html = host_page(api, css=css, in_head=True,
                     extra='data-position="bottom-left" data-accent="rebeccapurple"')
    page = open_page(site.page("hostile-css.html", html))
    launcher = page.locator("article-qa-widget .launcher")
    expect(launcher).to_be_visible()
    box = launcher.bounding_box()
    assert box["x"] < DESKTOP["width"] / 2 and box["y"] > DESKTOP["height"] / 2  # bottom left
    assert shadow_eval(
        page, "return getComputedStyle(root.querySelector('.launcher')).backgroundColor"
    ) == "rgb(102, 51, 153)"
    assert shadow_eval(page, "return getComputedStyle(root.querySelector('.launcher')).fontSize") != "40px"
    launcher.click()
    ask(page, MEANS_TESTING)  # cross-origin: the service's CORS allow-list names this site
    expect(page.locator("article-qa-widget .answer")).to_contain_text("means-testing")
    page.locator("article-qa-widget ol.cites summary").first.click()
    mark_bg = shadow_eval(page, "return getComputedStyle(root.querySelector('mark')).backgroundColor")
    assert mark_bg != "rgb(0, 0, 0)"
    # ...and the widget leaves the page's own styles alone.
    assert page.evaluate("document.styleSheets.length") == 1
    assert page.evaluate("getComputedStyle(document.getElementById('host-text')).fontSize") == "40px"


def test_untrusted_text_is_shown_as_text(api: str, open_page, watch: Watch) -> None:
    page = open_page(f"{api}/")
    page.locator("article-qa-widget .launcher").click()
    with page.expect_response(lambda r: r.url.endswith("/ask/stream")) as answered:
        ask(page, HOSTILE_QUESTION)
    data = stream_events(answered.value.text())["passages"]
    rank, passage = next((p["rank"], p) for p in data["passages"] if p["article_id"] == HOSTILE_ID)
    assert HOSTILE_MARKUP in passage["text"]
    citation = page.locator("article-qa-widget ol.cites > li").nth(rank - 1)
    citation.locator("summary").click()
    expect(citation.locator(".passage")).to_contain_text(HOSTILE_MARKUP)
    expect(citation.locator("summary")).to_contain_text(HOSTILE_META["title"])
    # Offsets count code points; the emoji before the highlight must not shift the mark.
    h = passage["highlight"]
    assert citation.locator("mark").inner_text() == passage["text"][h["start"]:h["end"]]
    assert shadow_eval(page, "return root.querySelectorAll('img, script, b').length") == 0
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    # A javascript: url from the archive is never made a link.
    assert citation.locator("a.original").count() == 0
    hrefs = shadow_eval(page, "return [...root.querySelectorAll('a')].map(a => a.href)")
    assert hrefs and all(h.startswith("http://") for h in hrefs)

    with page.context.expect_page() as opened:
        citation.locator("a.read").click()
    article_page = opened.value
    marked = article_page.locator("mark#passage")
    expect(marked).to_be_visible()
    article = _get_json(f"{api}/articles/{HOSTILE_ID}")
    assert marked.inner_text() == article["text"][passage["start"]:passage["end"]]
    assert article_page.locator("#text").text_content() == HOSTILE_TEXT
    expect(article_page.locator("h1")).to_have_text(HOSTILE_META["title"])
    expect(article_page.locator("#meta")).to_contain_text(HOSTILE_META["author"])
    assert article_page.evaluate("document.querySelectorAll('img, b, #text script, h1 script').length") == 0
    assert article_page.locator("#meta a").count() == 0  # no link for the javascript: url
    page.wait_for_timeout(300)  # give any injected handler a chance to fire
    assert watch.dialogs == []


def test_api_down_shows_error_and_retry_recovers(api: str, site: StaticSite, open_page) -> None:
    forwarder = SwitchableForwarder(int(api.rsplit(":", 1)[1]))
    try:
        proxied = f"http://127.0.0.1:{forwarder.port}"
        # The script itself comes from the live service; only the API it calls is down.
        html = host_page(api).replace(f'data-api="{api}"', f'data-api="{proxied}"')
        page = open_page(site.page("api-down.html", html))
        page.locator("article-qa-widget .launcher").click()
        ask(page, MEANS_TESTING)
        error = page.locator("article-qa-widget .msg.error")
        expect(error).to_contain_text("could not be reached")
        expect(page.locator("article-qa-widget .loading")).to_have_count(0)
        retry = error.get_by_role("button", name="Retry")
        expect(retry).to_be_visible()
        shot = _screenshot(page, "widget-error-1280x800.png")
        assert shot.exists()

        forwarder.up = True
        retry.click()
        expect(page.locator("article-qa-widget .answer")).to_contain_text("means-testing")
        expect(page.locator("article-qa-widget .msg.error")).to_have_count(0)
        expect(page.locator("article-qa-widget .msg.user")).to_have_count(1)
    finally:
        forwarder.close()


def test_slow_api_times_out_with_retry(api: str, site: StaticSite, open_page) -> None:
    # A socket that accepts connections and never answers.
    silent = socket.create_server(("127.0.0.1", 0), backlog=16)
    try:
        dead = f"http://127.0.0.1:{silent.getsockname()[1]}"
        html = host_page(api, extra='data-timeout="1.5"').replace(f'data-api="{api}"', f'data-api="{dead}"')
        page = open_page(site.page("api-slow.html", html))
        page.locator("article-qa-widget .launcher").click()
        started = time.monotonic()
        ask(page, MEANS_TESTING)
        expect(page.locator("article-qa-widget .loading")).to_be_visible()
        error = page.locator("article-qa-widget .msg.error")
        expect(error).to_contain_text("took too long", timeout=10_000)
        assert 1.0 < time.monotonic() - started < 10
        expect(error.get_by_role("button", name="Retry")).to_be_visible()
    finally:
        silent.close()


def test_client_error_shows_the_service_detail(api: str, open_page) -> None:
    page = open_page(f"{api}/")
    page.locator("article-qa-widget .launcher").click()
    long_question = "Who argues against means-testing " + "and charging " * 20 + "?"
    assert len(long_question) > MAX_QUESTION_CHARS
    ask(page, long_question)
    error = page.locator("article-qa-widget .msg.error")
    expect(error).to_contain_text(f"the limit is {MAX_QUESTION_CHARS}")
    expect(error.get_by_role("button", name="Retry")).to_be_visible()


def test_article_view_with_unknown_article_or_bad_offsets(api: str, open_page) -> None:
    page = open_page(f"{api}/read/no_such_article?start=0&end=10")
    expect(page.locator("h1")).to_have_text("Article not available")
    expect(page.locator("#status")).to_contain_text("no_such_article")
    page.goto(f"{api}/read/{MEANS_TESTING_ARTICLE}?start=10&end=99999999")
    expect(page.locator("#status")).to_contain_text("does not fit")
    expect(page.locator("mark")).to_have_count(0)
    article = _get_json(f"{api}/articles/{MEANS_TESTING_ARTICLE}")
    assert page.locator("#text").text_content() == article["text"]


@pytest.fixture(scope="module")
def composing_api(tmp_path_factory: pytest.TempPathFactory, sample_index: Path, local_llm: str) -> Iterator[str]:
    """`qa-serve` over the sample index with composed answers from the local model (qa-llm's)."""
    work = tmp_path_factory.mktemp("widget-llm")
    port = free_port()
    process = start_qa_serve(SAMPLE_ARTICLES, sample_index, port, work / "serve.log", QA_LLM_URL=local_llm,
                             QA_TARGET_PRECISION=str(ANSWERING_PRECISION))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


# Records, in the widget's shadow tree, when the passages, the streamed words and the checked
# composed answer first appear.
RECORD_STAGES = """
const root = document.querySelector('article-qa-widget').shadowRoot;
window.stages = [];
const seen = (stage) => { if (!window.stages.includes(stage)) window.stages.push(stage); };
new MutationObserver(() => {
  if (root.querySelector('ol.cites > li')) seen('passages');
  const live = root.querySelector('.composing');
  if (live && live.textContent) seen('streaming');
  if (root.querySelector('.composed')) seen('checked');
}).observe(root, {subtree: true, childList: true, characterData: true});
"""


def test_the_widget_streams_a_composed_answer_then_shows_the_checked_text(composing_api: str, open_page) -> None:
    page = open_page(f"{composing_api}/")
    page.locator("article-qa-widget .launcher").click()
    page.evaluate(f"() => {{ {RECORD_STAGES} }}")
    with page.expect_response(lambda r: r.url.endswith("/ask/stream")) as answered:
        ask(page, MEANS_TESTING)
    composed = page.locator("article-qa-widget .composed")
    expect(composed).to_be_visible(timeout=30_000)
    events = stream_events(answered.value.text())
    generated = events["done"]["generated"]
    assert generated["text"], "the local model's answer to this question has a supported sentence"
    assert events["written"]["text"]  # the deltas the widget showed while it streamed

    # Passages first, then the words as they come, then the checked text in their place.
    assert page.evaluate("window.stages") == ["passages", "streaming", "checked"]
    expect(page.locator("article-qa-widget .composing")).to_have_count(0)
    shown = composed.inner_text()
    assert shown.startswith(generated["text"])
    for sentence in generated["sentences"]:
        if not sentence["supported"]:
            assert sentence["text"] not in shown
    # The extractive answer stays below it.
    expect(page.locator("article-qa-widget .answer")).to_contain_text("— Simon Duffy")

    # Each [n] in the checked text opens source n.
    cited = next(s["citations"][0] for s in generated["sentences"] if s["supported"])
    source = page.locator("article-qa-widget ol.cites > li").nth(cited - 1).locator("details")
    expect(source).not_to_have_attribute("open", "")
    composed.get_by_role("button", name=f"Show source {cited}").click()
    expect(source).to_have_attribute("open", "")
    _screenshot(page, "widget-composed-1280x800.png")

    # After a reload the checked answer is shown again, from the saved conversation.
    page.reload()
    expect(page.locator("article-qa-widget .composed")).to_contain_text(generated["text"])
