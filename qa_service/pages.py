"""Pages the service serves besides the API: the demo page (`/`), the embeddable chat widget
(`/widget.js`), the article view a citation links to (`/read/{article_id}`) and what readers
ask (`/admin`: the page holds no data; it asks for the admin token and fetches the insights).

All are static files in `qa_service/widget/`, read once when the router is built; the pages
fetch their data from the API in the browser. The scripts' shared text helpers (`text.js`) are
put in where each script says `// include: text.js`, so that the widget stays one file. Scripts
are separate files rather than inline so the pages can send a Content-Security-Policy that
forbids inline script: the article view shows archive text, and the policy is a second guard
behind inserting it only as text.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response

from index.records import is_valid_article_id

WIDGET_DIR = Path(__file__).resolve().parent / "widget"

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cache-Control": "no-cache",
}
# widget.js runs inside other sites' pages; a short cache keeps updates reaching them.
SCRIPT_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=300"}
JS = "application/javascript; charset=utf-8"


def _read(name: str) -> bytes:
    return (WIDGET_DIR / name).read_bytes()


def _script(name: str) -> bytes:
    """`name`.js with text.js put in place of its `// include: text.js` line, at its indent."""
    helpers = _read("text.js").decode("utf-8")
    return re.sub(
        r"^( *)// include: text\.js$",
        lambda m: "\n".join(m.group(1) + line if line else line for line in helpers.rstrip("\n").split("\n")),
        _read(f"{name}.js").decode("utf-8"), flags=re.M,
    ).encode("utf-8")


def pages_router() -> APIRouter:
    """Routes for `/`, `/widget.js`, `/read/{article_id}`, `/admin` and the page scripts. They need
    no settings: the widget and article view find the API at their own origin or the embed's
    `data-api`."""
    demo, read_page, admin_page = _read("demo.html"), _read("read.html"), _read("admin.html")
    widget_js, read_js, demo_js, admin_js = (_script(name) for name in ("widget", "read", "demo", "admin"))

    router = APIRouter(include_in_schema=False)

    @router.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
    def demo_page() -> Response:
        return HTMLResponse(demo, headers=PAGE_HEADERS)

    @router.api_route("/widget.js", methods=["GET", "HEAD"])
    def widget_script() -> Response:
        return Response(widget_js, media_type=JS, headers=SCRIPT_HEADERS)

    @router.api_route("/read.js", methods=["GET", "HEAD"])
    def read_script() -> Response:
        return Response(read_js, media_type=JS, headers=SCRIPT_HEADERS)

    @router.api_route("/demo.js", methods=["GET", "HEAD"])
    def demo_script() -> Response:
        return Response(demo_js, media_type=JS, headers=SCRIPT_HEADERS)

    @router.api_route("/admin", methods=["GET", "HEAD"], response_class=HTMLResponse)
    def admin() -> Response:
        return HTMLResponse(admin_page, headers=PAGE_HEADERS)

    @router.api_route("/admin.js", methods=["GET", "HEAD"])
    def admin_script() -> Response:
        return Response(admin_js, media_type=JS, headers=SCRIPT_HEADERS)

    @router.api_route("/read/{article_id}", methods=["GET", "HEAD"], response_class=HTMLResponse)
    def read_article(article_id: str) -> Response:
        # The page looks the article up itself (and says so if it is unknown); here we only
        # turn away ids that no article can have.
        if not is_valid_article_id(article_id):
            raise HTTPException(status_code=404, detail=f"not a valid article id: {article_id!r}")
        return HTMLResponse(read_page, headers=PAGE_HEADERS)

    return router
