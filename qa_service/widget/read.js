/*
 * Article view: /read/{article_id}?start=S&end=E shows the article's full text with the
 * passage [S, E) (offsets in Unicode code points, as the API counts them) marked and scrolled
 * into view. Everything from the API is inserted as text, never as HTML.
 */
(function () {
  "use strict";

  var titleEl = document.getElementById("title");
  var metaEl = document.getElementById("meta");
  var statusEl = document.getElementById("status");
  var textEl = document.getElementById("text");

  function say(message, isError) {
    statusEl.textContent = message;
    statusEl.className = isError ? "note error" : "note";
    statusEl.hidden = !message;
  }

  // include: text.js

  function parseOffset(value) {
    return value !== null && /^\d{1,10}$/.test(value) ? parseInt(value, 10) : null;
  }

  var segments = window.location.pathname.split("/");
  var articleId;
  try {
    articleId = decodeURIComponent(segments[segments.length - 1] || "");
  } catch (e) {
    articleId = "";
  }
  var params = new URLSearchParams(window.location.search);
  var start = parseOffset(params.get("start"));
  var end = parseOffset(params.get("end"));

  function show(article) {
    var title = article.title || article.id;
    titleEl.textContent = title;
    document.title = title;

    var parts = [];
    if (article.author) parts.push(document.createTextNode("By " + article.author));
    if (article.date) parts.push(document.createTextNode(String(article.date)));
    if (article.source) parts.push(document.createTextNode(String(article.source)));
    var original = safeHttpUrl(article.url);
    if (original) {
      var link = document.createElement("a");
      link.href = original;
      link.rel = "noopener noreferrer";
      link.textContent = "Original page";
      parts.push(link);
    }
    metaEl.textContent = "";
    parts.forEach(function (node, i) {
      if (i) metaEl.appendChild(document.createTextNode(" · "));
      metaEl.appendChild(node);
    });
    metaEl.hidden = !parts.length;

    var text = String(article.text || "");
    textEl.textContent = "";
    var length = codePointLength(text);
    if (start === null && end === null) {
      textEl.appendChild(document.createTextNode(text));
      say("");
      return;
    }
    if (start === null || end === null || start >= end || end > length) {
      textEl.appendChild(document.createTextNode(text));
      say("The passage position in the link does not fit this article (it may have changed), " +
          "so the whole article is shown.", true);
      return;
    }
    var a = codeUnitIndex(text, start);
    var b = codeUnitIndex(text, end);
    var mark = document.createElement("mark");
    mark.id = "passage";
    mark.tabIndex = -1; // focusable by script, so keyboard and screen-reader users land on it
    mark.textContent = text.slice(a, b);
    textEl.appendChild(document.createTextNode(text.slice(0, a)));
    textEl.appendChild(mark);
    textEl.appendChild(document.createTextNode(text.slice(b)));
    say("The cited passage is highlighted.");
    mark.focus({ preventScroll: true });
    mark.scrollIntoView({ block: "center" });
  }

  if (!articleId) {
    titleEl.textContent = "No article";
    say("This link does not name an article.", true);
    return;
  }

  fetch("/articles/" + encodeURIComponent(articleId), { headers: { Accept: "application/json" } })
    .then(function (res) {
      return res.json().catch(function () { return null; }).then(function (data) {
        if (!res.ok) {
          var detail = data && typeof data.detail === "string" ? data.detail : "error " + res.status;
          throw new Error(res.status === 404 ? "No such article: " + detail : detail);
        }
        if (!data || typeof data !== "object") throw new Error("The article could not be read.");
        return data;
      });
    })
    .then(show)
    .catch(function (err) {
      titleEl.textContent = "Article not available";
      document.title = "Article not available";
      say(err && err.message && err.message !== "Failed to fetch" ? err.message
        : "The archive service could not be reached.", true);
    });
})();
