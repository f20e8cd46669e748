/*
 * Article QA chat widget. Embed with one tag:
 *
 *   <script src="https://HOST/widget.js" data-api="https://HOST" defer></script>
 *
 * Options (data- attributes on that tag): data-api (API base URL; default: the origin this
 * script came from), data-title, data-placeholder, data-accent (CSS colour), data-position
 * (bottom-right | bottom-left), data-top-k (1..20 passages), data-timeout (seconds, default 15).
 *
 * Plain JS, no build step. Everything lives in an open shadow root so the host page's CSS
 * cannot reach in and ours cannot leak out. Text from the archive is only ever inserted as
 * text nodes (textContent / createTextNode), never parsed as HTML.
 */
(function () {
  "use strict";

  var script = document.currentScript ||
    // currentScript is null only when we are run from a callback; fall back to the tag itself.
    (function () {
      var tags = document.querySelectorAll("script[src*='widget.js']");
      return tags[tags.length - 1] || null;
    })();
  if (!script || script.getAttribute("data-qa-mounted")) return;
  script.setAttribute("data-qa-mounted", "1");

  var ABSTAIN_TEXT = "Nothing in the archive answers that.";
  var LOW_CONFIDENCE_TEXT = "No clear answer in the archive. These passages may be related:";
  var MAX_QUESTION = 1000;
  var MAX_HISTORY = 20; // turns the API accepts
  var MAX_STORED = 60; // messages kept in sessionStorage, so it cannot grow without bound
  var SVG_NS = "http://www.w3.org/2000/svg";

  var config = readConfig(script);
  var storageKey = "article-qa-widget:" + config.api;

  // ---- configuration -----------------------------------------------------------------

  function readConfig(tag) {
    var data = tag.dataset || {};
    var origin;
    try {
      origin = new URL(tag.src, document.baseURI).origin;
    } catch (e) {
      origin = window.location.origin;
    }
    var api = (data.api || origin).trim().replace(/\/+$/, "");
    var topK = parseInt(data.topK, 10);
    var timeout = parseFloat(data.timeout);
    return {
      api: api,
      title: (data.title || "Ask the archive").trim(),
      placeholder: (data.placeholder || "Ask a question about the articles…").trim(),
      accent: data.accent && window.CSS && CSS.supports("color", data.accent) ? data.accent : null,
      position: data.position === "bottom-left" ? "bottom-left" : "bottom-right",
      topK: topK >= 1 && topK <= 20 ? topK : null,
      timeoutMs: timeout > 0 ? Math.round(timeout * 1000) : 15000,
    };
  }

  // ---- small DOM helpers (text only; no HTML parsing anywhere) ---------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (name) {
        var value = attrs[name];
        if (value === null || value === undefined || value === false) return;
        if (name === "text") node.textContent = value;
        else if (name === "className") node.className = value;
        else node.setAttribute(name, value === true ? "" : String(value));
      });
    }
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function svgIcon(pathData) {
    var svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", pathData);
    svg.appendChild(path);
    return svg;
  }

  // include: text.js

  // The [start, end) code-unit range of `text` for code-point offsets, or null when they mark nothing.
  function markedRange(text, start, end) {
    if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && end > start)) return null;
    var a = codeUnitIndex(text, start);
    var b = codeUnitIndex(text, end);
    return a < b ? [a, b] : null;
  }

  function markedText(text, start, end) {
    text = String(text || "");
    var range = markedRange(text, start, end);
    return range ? text.slice(range[0], range[1]).trim() : "";
  }

  // Append `text` to `parent` with [start, end) (code points) wrapped in <mark>.
  function appendMarked(parent, text, start, end) {
    text = String(text || "");
    var range = markedRange(text, start, end);
    if (!range) {
      parent.appendChild(document.createTextNode(text));
      return null;
    }
    parent.appendChild(document.createTextNode(text.slice(0, range[0])));
    var mark = el("mark", null, [text.slice(range[0], range[1])]);
    parent.appendChild(mark);
    parent.appendChild(document.createTextNode(text.slice(range[1])));
    return mark;
  }

  // ---- conversation state, kept for the browser session -------------------------------

  // messages: {role: "user", text} | {role: "assistant", response} | {role: "error", ...}
  var state = { open: false, messages: [] };

  function loadState() {
    try {
      var saved = JSON.parse(window.sessionStorage.getItem(storageKey) || "null");
      if (saved && Array.isArray(saved.messages)) {
        state.open = !!saved.open;
        state.messages = saved.messages.filter(function (m) {
          return m && (m.role === "user" || m.role === "assistant");
        });
      }
    } catch (e) {
      // Storage can be unavailable (privacy modes, sandboxed frames): just don't persist.
    }
  }

  function saveState() {
    try {
      window.sessionStorage.setItem(
        storageKey,
        JSON.stringify({ open: state.open, messages: state.messages.slice(-MAX_STORED) })
      );
    } catch (e) {
      /* see loadState */
    }
  }

  // What the assistant "said" in a turn, as the API's history wants it: plain text.
  function assistantSummary(response) {
    if (!response || response.abstained) return ABSTAIN_TEXT;
    if (response.answer && response.answer.text) return response.answer.text;
    if (response.confidence === "low") return LOW_CONFIDENCE_TEXT;
    var first = response.passages && response.passages[0];
    if (!first) return ABSTAIN_TEXT;
    var h = first.highlight;
    var text = String(first.text || "");
    if (h && Number.isInteger(h.start) && Number.isInteger(h.end) && h.end > h.start) {
      text = text.slice(codeUnitIndex(text, h.start), codeUnitIndex(text, h.end));
    }
    return text;
  }

  // The conversation before `uptoIndex` (the question being asked), as {role, content} turns.
  function historyBefore(uptoIndex) {
    var turns = [];
    for (var i = 0; i < uptoIndex; i++) {
      var m = state.messages[i];
      var next = state.messages[i + 1];
      // Only complete question/answer pairs: a question that failed is not part of the talk.
      if (m.role === "user" && next && next.role === "assistant" && i + 1 < uptoIndex) {
        turns.push({ role: "user", content: m.text.slice(0, MAX_QUESTION) });
        turns.push({ role: "assistant", content: assistantSummary(next.response).slice(0, 2000) });
        i++;
      }
    }
    return turns.slice(-MAX_HISTORY);
  }

  // ---- styles --------------------------------------------------------------------------

  var CSS_TEXT = [
    // `all: initial !important` on the host: in a shadow tree, !important beats the page's
    // !important, so no page rule can hide, move or restyle the widget's host element.
    ":host { all: initial !important; display: block !important; position: static !important; }",
    ".root { --accent: #1f5f99; --accent-text: #fff; --bg: #fff; --fg: #1b1b1b; --muted: #5b5b5b;",
    "  --line: #d6d6d6; --soft: #f3f5f7; font: 15px/1.45 system-ui, -apple-system, 'Segoe UI',",
    "  Roboto, 'Helvetica Neue', Arial, sans-serif; color: var(--fg); text-align: left;",
    "  letter-spacing: normal; word-spacing: normal; text-transform: none; font-style: normal;",
    "  font-weight: 400; white-space: normal; direction: ltr; }",
    "*, *::before, *::after { box-sizing: border-box; }",
    "[hidden] { display: none !important; }",
    ".sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px;",
    "  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }",
    "button, textarea { font: inherit; color: inherit; }",
    "button { cursor: pointer; }",
    ":focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }",
    ".launcher { position: fixed; bottom: 20px; z-index: 2147483000; display: inline-flex;",
    "  align-items: center; gap: 8px; min-height: 48px; padding: 0 18px 0 14px; border: 0;",
    "  border-radius: 24px; background: var(--accent); color: var(--accent-text);",
    "  font-weight: 600; box-shadow: 0 4px 14px rgba(0,0,0,.25); }",
    ".launcher svg { width: 22px; height: 22px; fill: currentColor; }",
    ".right .launcher, .right .panel { right: 20px; }",
    ".left .launcher, .left .panel { left: 20px; }",
    ".panel { position: fixed; bottom: 84px; z-index: 2147483001; width: 400px;",
    "  max-width: calc(100vw - 40px); height: 600px; max-height: calc(100vh - 104px);",
    "  display: flex; flex-direction: column; background: var(--bg); color: var(--fg);",
    "  border: 1px solid var(--line); border-radius: 12px; box-shadow: 0 10px 40px rgba(0,0,0,.25);",
    "  overflow: hidden; }",
    ".head { display: flex; align-items: center; gap: 8px; padding: 10px 10px 10px 16px;",
    "  background: var(--accent); color: var(--accent-text); }",
    ".head h2 { flex: 1; margin: 0; font-size: 16px; font-weight: 600; line-height: 1.3; }",
    ".head button { display: inline-flex; align-items: center; justify-content: center;",
    "  min-width: 36px; min-height: 36px; padding: 0 8px; border: 0; border-radius: 6px;",
    "  background: transparent; color: inherit; font-size: 13px; }",
    ".head button:hover { background: rgba(255,255,255,.18); }",
    ".head svg { width: 20px; height: 20px; fill: currentColor; }",
    ".head :focus-visible { outline-color: var(--accent-text); outline-offset: -3px; }",
    ".log { flex: 1; overflow-y: auto; padding: 12px 14px; display: flex; flex-direction: column;",
    "  gap: 12px; overscroll-behavior: contain; }",
    ".empty { color: var(--muted); margin: auto 0; text-align: center; }",
    ".msg { max-width: 100%; overflow-wrap: anywhere; }",
    ".msg p { margin: 0; }",
    ".user { align-self: flex-end; max-width: 85%; padding: 8px 12px; border-radius: 12px 12px 2px 12px;",
    "  background: var(--accent); color: var(--accent-text); white-space: pre-wrap; }",
    ".bot { align-self: stretch; }",
    ".answer { margin: 0 0 8px; padding: 10px 12px; border-left: 4px solid var(--accent);",
    "  background: var(--soft); border-radius: 0 8px 8px 0; }",
    ".answer .who { display: block; margin-top: 4px; color: var(--muted); font-size: 14px; }",
    ".cite-ref { margin-left: 4px; padding: 0 4px; border: 1px solid var(--line); border-radius: 4px;",
    "  background: var(--bg); font-size: 12px; vertical-align: 1px; }",
    ".composed, .composing { margin: 0 0 8px; padding: 10px 12px; border-left: 4px solid var(--accent);",
    "  background: var(--soft); border-radius: 0 8px 8px 0; white-space: pre-wrap; }",
    ".composing { color: var(--muted); }",
    ".composed-note { display: block; margin-top: 4px; color: var(--muted); font-size: 12px;",
    "  white-space: normal; }",
    ".abstain { color: var(--muted); font-style: italic; }",
    ".unsure { margin: 0 0 8px; padding: 8px 12px; border-left: 4px solid var(--line);",
    "  color: var(--muted); }",
    ".sources-label { margin: 4px 0; font-size: 13px; font-weight: 600; color: var(--muted); }",
    "ol.cites { list-style: none; margin: 0; padding: 0; display: flex; flex-direction: column; gap: 6px; }",
    "ol.cites details { border: 1px solid var(--line); border-radius: 8px; background: var(--bg); }",
    "ol.cites summary { display: flex; gap: 8px; padding: 8px 10px; cursor: pointer; list-style: none;",
    "  border-radius: 8px; }",
    "ol.cites summary::-webkit-details-marker { display: none; }",
    "ol.cites summary::after { content: '\\25B8'; margin-left: auto; color: var(--muted); }",
    "ol.cites details[open] summary::after { content: '\\25BE'; }",
    "ol.cites summary:hover { background: var(--soft); }",
    ".num { flex: none; min-width: 22px; height: 22px; border-radius: 11px; background: var(--soft);",
    "  border: 1px solid var(--line); font-size: 12px; font-weight: 600; text-align: center;",
    "  line-height: 20px; }",
    ".meta { display: flex; flex-direction: column; min-width: 0; font-size: 14px; }",
    ".meta .speaker { font-weight: 600; }",
    ".meta .title { color: var(--muted); }",
    ".meta .sentence { margin-top: 2px; display: -webkit-box; -webkit-line-clamp: 3; -webkit-box-orient: vertical;",
    "  overflow: hidden; }",
    "details[open] .meta .sentence { display: none; }",
    ".cite-body { padding: 0 10px 10px; }",
    ".passage { margin: 0 0 8px; padding: 8px 10px; background: var(--soft); border-radius: 6px;",
    "  font-size: 14px; white-space: pre-wrap; }",
    "mark { background: #ffe27a; color: #1b1b1b; padding: 0 1px; border-radius: 2px; }",
    ".links { display: flex; flex-wrap: wrap; gap: 12px; font-size: 14px; }",
    ".links a { color: var(--accent); font-weight: 600; }",
    ".loading { display: flex; align-items: center; gap: 8px; color: var(--muted); }",
    ".dots { display: inline-flex; gap: 4px; }",
    ".dots span { width: 7px; height: 7px; border-radius: 50%; background: var(--accent);",
    "  animation: qa-blink 1.2s infinite ease-in-out both; }",
    ".dots span:nth-child(2) { animation-delay: .2s; } .dots span:nth-child(3) { animation-delay: .4s; }",
    "@keyframes qa-blink { 0%, 80%, 100% { opacity: .25; } 40% { opacity: 1; } }",
    "@media (prefers-reduced-motion: reduce) { .dots span { animation: none; opacity: .6; } }",
    ".error { padding: 10px 12px; border: 1px solid #e0a4a4; background: #fdf1f1; color: #7a1010;",
    "  border-radius: 8px; }",
    ".error p { margin: 0 0 8px; }",
    ".error button { padding: 6px 14px; border: 1px solid #7a1010; border-radius: 6px;",
    "  background: #fff; color: #7a1010; font-weight: 600; }",
    ".feedback { display: flex; flex-wrap: wrap; align-items: center; gap: 8px; margin-top: 8px;",
    "  font-size: 13px; color: var(--muted); }",
    ".feedback-choice { min-height: 32px; padding: 0 12px; border: 1px solid var(--line); border-radius: 6px;",
    "  background: var(--bg); color: inherit; }",
    ".feedback-choice[aria-pressed='true'] { border-color: var(--accent); color: var(--accent); font-weight: 600; }",
    ".composer { display: flex; gap: 8px; align-items: flex-end; padding: 10px; border-top: 1px solid var(--line); }",
    ".composer textarea { flex: 1; min-height: 44px; max-height: 140px; resize: none; padding: 10px;",
    "  border: 1px solid var(--line); border-radius: 8px; background: var(--bg); line-height: 1.35; }",
    ".composer textarea:focus-visible { outline-offset: 0; }",
    ".send { min-height: 44px; padding: 0 16px; border: 0; border-radius: 8px; background: var(--accent);",
    "  color: var(--accent-text); font-weight: 600; }",
    ".send[aria-disabled='true'] { opacity: .55; cursor: progress; }",
    // Phone width: the panel takes the whole screen so nothing is cramped or off-screen.
    "@media (max-width: 480px) {",
    "  .panel { left: 0 !important; right: 0 !important; top: 0; bottom: 0; width: 100%;",
    "    max-width: 100%; height: 100%; max-height: none; border-radius: 0; border: 0; }",
    "  .launcher { bottom: 16px; }",
    "  .right .launcher { right: 16px; } .left .launcher { left: 16px; }",
    "}",
  ].join("\n");

  function applyStyles(shadow) {
    // Constructable stylesheets are not subject to a host page's CSP style-src; fall back to
    // a <style> element where they are not supported.
    try {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS_TEXT);
      shadow.adoptedStyleSheets = [sheet];
    } catch (e) {
      shadow.appendChild(el("style", { text: CSS_TEXT }));
    }
  }

  // ---- the UI --------------------------------------------------------------------------

  var ui = {};
  var pending = null; // {controller, timer} while a request is in flight
  var idPrefix = "qa-" + Math.random().toString(36).slice(2, 8) + "-";

  function build() {
    var host = document.createElement("article-qa-widget");
    var shadow = host.attachShadow({ mode: "open" });
    applyStyles(shadow);

    var root = el("div", { className: "root " + (config.position === "bottom-left" ? "left" : "right") });
    if (config.accent) root.style.setProperty("--accent", config.accent);

    var panelId = idPrefix + "panel";
    var titleId = idPrefix + "title";
    var inputId = idPrefix + "input";

    ui.launcher = el(
      "button",
      {
        type: "button",
        className: "launcher",
        "aria-haspopup": "dialog",
        "aria-expanded": "false",
        "aria-controls": panelId,
      },
      [svgIcon("M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"),
       el("span", { text: config.title })]
    );

    ui.clear = el("button", { type: "button", className: "clear", title: "Start a new conversation" },
      ["New chat"]);
    ui.close = el("button", { type: "button", className: "close", "aria-label": "Close " + config.title },
      [svgIcon("M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12 19 17.6 17.6 19 12 13.4 6.4 19 5 17.6 10.6 12 5 6.4z")]);

    ui.log = el("div", {
      className: "log",
      role: "log",
      "aria-live": "polite",
      "aria-label": "Conversation",
      tabindex: "0",
    });

    ui.input = el("textarea", {
      id: inputId,
      rows: "2",
      maxlength: String(MAX_QUESTION),
      placeholder: config.placeholder,
      "aria-describedby": idPrefix + "hint",
      autocomplete: "off",
    });
    ui.send = el("button", { type: "submit", className: "send" }, ["Send"]);
    ui.form = el("form", { className: "composer", novalidate: true }, [
      el("label", { className: "sr-only", for: inputId, text: "Your question" }),
      el("span", { className: "sr-only", id: idPrefix + "hint",
        text: "Enter sends, Shift+Enter starts a new line." }),
      ui.input,
      ui.send,
    ]);

    ui.panel = el(
      "div",
      { className: "panel", id: panelId, role: "dialog", "aria-label": config.title, hidden: true },
      [el("div", { className: "head" }, [el("h2", { id: titleId, text: config.title }), ui.clear, ui.close]),
       ui.log,
       ui.form]
    );

    root.appendChild(ui.panel);
    root.appendChild(ui.launcher);
    shadow.appendChild(root);
    ui.host = host;
    ui.shadow = shadow;

    ui.launcher.addEventListener("click", function () {
      if (state.open) closePanel(); else openPanel(true);
    });
    ui.close.addEventListener("click", function () { closePanel(); });
    ui.clear.addEventListener("click", clearConversation);
    ui.panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        closePanel();
      }
    });
    ui.form.addEventListener("submit", function (event) {
      event.preventDefault();
      submitQuestion();
    });
    ui.input.addEventListener("keydown", function (event) {
      // Enter sends; Shift+Enter is a new line; don't send while an IME is composing.
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        submitQuestion();
      }
    });
    document.body.appendChild(host);
  }

  function openPanel(moveFocus) {
    state.open = true;
    ui.panel.hidden = false;
    ui.launcher.setAttribute("aria-expanded", "true");
    saveState();
    scrollToLatest();
    if (moveFocus) ui.input.focus();
  }

  function closePanel() {
    state.open = false;
    ui.panel.hidden = true;
    ui.launcher.setAttribute("aria-expanded", "false");
    saveState();
    ui.launcher.focus();
  }

  // Scroll to the newest message, but never past its first line: an answer is read from its
  // start (the short answer), not from the last of the sources listed under it.
  function scrollToLatest() {
    var latest = ui.log.lastElementChild;
    if (!latest) return;
    var top = latest.getBoundingClientRect().top - ui.log.getBoundingClientRect().top;
    ui.log.scrollTop += top - 8; // the browser stops at the end when the message fits
  }

  function clearConversation() {
    abortPending();
    state.messages = [];
    saveState();
    renderAll();
    ui.input.focus();
  }

  // ---- rendering ------------------------------------------------------------------------

  function renderAll() {
    ui.log.textContent = "";
    if (!state.messages.length) {
      ui.log.appendChild(el("p", { className: "empty", text:
        "Ask a question and get the passages from the archive that answer it, with citations." }));
    }
    state.messages.forEach(function (m, i) {
      ui.log.appendChild(renderMessage(m, i));
      // A question left without an answer (it failed, or the page was reloaded meanwhile).
      var next = state.messages[i + 1];
      if (m.role === "user" && !(next && next.role === "assistant")) {
        ui.log.appendChild(renderError({ message: "No answer was received for this question." }, i));
      }
    });
    scrollToLatest();
  }

  function renderMessage(m, index) {
    if (m.role === "user") {
      return el("div", { className: "msg user" }, [
        el("span", { className: "sr-only", text: "You: " }),
        m.text,
      ]);
    }
    return renderAnswer(m.response, index);
  }

  function renderAnswer(response, index) {
    var box = el("div", { className: "msg bot" }, [el("span", { className: "sr-only", text: "Archive: " })]);
    var passages = (response && Array.isArray(response.passages)) ? response.passages : [];
    if (!response || response.abstained || !passages.length) {
      box.appendChild(el("p", { className: "abstain", text: ABSTAIN_TEXT }));
      return box;
    }
    var listId = idPrefix + "cites-" + index;
    var answer = response.answer;
    var unsure = response.confidence === "low" || !(answer && answer.text);
    if (unsure) box.appendChild(el("p", { className: "unsure", text: LOW_CONFIDENCE_TEXT }));
    var generated = response.generated;
    if (!unsure && generated && typeof generated.text === "string" && generated.text) {
      box.appendChild(renderComposed(generated.text, passages.length, listId));
    }
    if (answer && answer.text) {
      var children = [el("span", { className: "answer-text", text: answer.text })];
      if (answer.speaker) children.push(el("span", { className: "who", text: "— " + answer.speaker }));
      var cited = Number.isInteger(answer.citation) ? answer.citation : null;
      if (cited !== null && cited >= 1 && cited <= passages.length) {
        children.splice(1, 0, citeButton(cited, listId));
      }
      box.appendChild(el("p", { className: "answer" }, children));
    }
    box.appendChild(el("p", {
      className: "sources-label", id: listId, text: unsure ? "Possibly related" : "Sources",
    }));
    var list = el("ol", { className: "cites", "aria-labelledby": listId });
    passages.forEach(function (p, i) {
      list.appendChild(renderCitation(p, i + 1, listId + "-" + (i + 1), unsure));
    });
    box.appendChild(list);
    if (typeof response.answer_id === "string" && response.answer_id) box.appendChild(renderFeedback(response));
    return box;
  }

  // "Was this helpful?" with Yes / No, sent to POST /feedback; the choice is kept with the
  // answer, so it shows again when the conversation is restored.
  function renderFeedback(response) {
    var status = el("span", { className: "feedback-status", role: "status" });
    var buttons = [true, false].map(function (helpful) {
      var button = el("button", {
        type: "button", className: "feedback-choice", "aria-pressed": String(response.feedback === helpful),
      }, [helpful ? "Yes" : "No"]);
      button.addEventListener("click", function () { sendFeedback(response, helpful, buttons, status); });
      return button;
    });
    if (typeof response.feedback === "boolean") status.textContent = "Thanks for telling us.";
    return el("div", { className: "feedback" }, [el("span", { text: "Was this helpful?" })].concat(buttons, [status]));
  }

  function sendFeedback(response, helpful, buttons, status) {
    buttons.forEach(function (b) { b.disabled = true; });
    fetch(config.api + "/feedback", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ answer_id: response.answer_id, helpful: helpful }),
    }).then(function (res) {
      if (!res.ok) throw new Error("HTTP " + res.status);
      response.feedback = helpful;
      saveState();
      buttons.forEach(function (b, i) { b.setAttribute("aria-pressed", String((i === 0) === helpful)); });
      status.textContent = "Thanks for telling us.";
    }).catch(function () {
      status.textContent = "Your answer could not be sent; try again later.";
    }).then(function () {
      buttons.forEach(function (b) { b.disabled = false; });
    });
  }

  // A "[n]" button that opens source n of the list `listId`.
  function citeButton(number, listId) {
    var ref = el("button", {
      type: "button",
      className: "cite-ref",
      "aria-label": "Show source " + number,
      "aria-controls": listId + "-" + number,
    }, ["[" + number + "]"]);
    ref.addEventListener("click", function () {
      var details = ui.shadow.getElementById(listId + "-" + number);
      if (details) {
        details.open = true;
        details.querySelector("summary").focus();
      }
    });
    return ref;
  }

  // The checked composed answer: its text, with each [n] marker (n a source shown) a button.
  function renderComposed(text, count, listId) {
    var box = el("p", { className: "composed" });
    var marker = /\[(\d+(?:\s*,\s*\d+)*)\]/g;
    var last = 0;
    var match;
    while ((match = marker.exec(text)) !== null) {
      box.appendChild(document.createTextNode(text.slice(last, match.index)));
      match[1].split(",").forEach(function (part) {
        var n = parseInt(part, 10);
        if (n >= 1 && n <= count) box.appendChild(citeButton(n, listId));
      });
      last = marker.lastIndex;
    }
    box.appendChild(document.createTextNode(text.slice(last)));
    box.appendChild(el("span", { className: "composed-note",
      text: "Written by a language model from the sources; each sentence was checked against the source it cites." }));
    return box;
  }

  // A source: who and which article, opening to the passage with its best sentence marked.
  // With no answer given (`withSentence`), that sentence shows unopened too, so a reader can
  // judge the possibly related passages at a glance.
  function renderCitation(p, number, id, withSentence) {
    var speaker = p.speaker || (p.section === "comment" ? "A reader (comment)" : "Unattributed");
    if (p.speaker && p.section === "comment") speaker += " (comment)";
    var title = p.title || p.article_id || "Untitled article";
    var h = p.highlight || {};
    var meta = [
      el("span", { className: "sr-only", text: "Source " + number + ": " }),
      el("span", { className: "speaker", text: speaker }),
      el("span", { className: "title", text: title }),
    ];
    var sentence = withSentence ? markedText(p.text, h.start, h.end) : "";
    if (sentence) meta.push(el("span", { className: "sentence", text: "“" + sentence + "”" }));

    var summary = el("summary", null, [
      el("span", { className: "num", "aria-hidden": "true", text: String(number) }),
      el("span", { className: "meta" }, meta),
    ]);

    var passage = el("blockquote", { className: "passage" });
    appendMarked(passage, p.text, h.start, h.end);

    var links = el("div", { className: "links" });
    if (p.article_id) {
      var read = config.api + "/read/" + encodeURIComponent(p.article_id);
      if (Number.isInteger(p.start) && Number.isInteger(p.end)) {
        read += "?start=" + p.start + "&end=" + p.end;
      }
      links.appendChild(el("a", { href: read, target: "_blank", rel: "noopener", className: "read" },
        ["Read in the article"]));
    }
    var original = safeHttpUrl(p.url);
    if (original) {
      links.appendChild(el("a", { href: original, target: "_blank", rel: "noopener noreferrer",
        className: "original" }, ["Original page"]));
    }

    var details = el("details", { id: id }, [
      summary,
      el("div", { className: "cite-body" }, [passage, links]),
    ]);
    return el("li", null, [details]);
  }

  function renderLoading() {
    return el("div", { className: "msg bot loading", role: "status" }, [
      el("span", { className: "dots", "aria-hidden": "true" }, [el("span"), el("span"), el("span")]),
      el("span", { text: "Searching the archive…" }),
    ]);
  }

  function renderError(error, questionIndex) {
    var retry = el("button", { type: "button", className: "retry" }, ["Retry"]);
    var box = el("div", { className: "msg error", role: "alert" }, [
      el("p", { text: error.message }),
      retry,
    ]);
    retry.addEventListener("click", function () {
      if (pending) return;
      box.remove();
      if (questionIndex !== state.messages.length - 1) {
        // Other questions came after this one: ask it again at the end of the conversation.
        state.messages.push({ role: "user", text: state.messages[questionIndex].text });
        saveState();
        ui.log.appendChild(renderMessage(state.messages[state.messages.length - 1]));
        questionIndex = state.messages.length - 1;
      }
      ask(questionIndex);
    });
    return box;
  }

  // ---- talking to the API ---------------------------------------------------------------

  function abortPending() {
    if (pending) {
      clearTimeout(pending.timer);
      pending.controller.abort();
      pending = null;
    }
    setBusy(false);
  }

  function setBusy(busy) {
    ui.send.setAttribute("aria-disabled", busy ? "true" : "false");
    ui.log.setAttribute("aria-busy", busy ? "true" : "false");
  }

  function submitQuestion() {
    if (pending) return; // one question at a time; the button says so via aria-disabled
    var question = ui.input.value.trim();
    if (!question) {
      ui.input.focus();
      return;
    }
    if (question.length > MAX_QUESTION) question = question.slice(0, MAX_QUESTION);
    ui.input.value = "";
    if (!state.messages.length) ui.log.textContent = ""; // drop the empty-state hint
    state.messages.push({ role: "user", text: question });
    saveState();
    ui.log.appendChild(renderMessage(state.messages[state.messages.length - 1]));
    ask(state.messages.length - 1);
  }

  // Ask the question at state.messages[index] (the last message), with the talk before it.
  function ask(index) {
    var question = state.messages[index].text;
    var body = { question: question };
    var history = historyBefore(index);
    if (history.length) body.history = history;
    if (config.topK) body.top_k = config.topK;

    var loading = renderLoading();
    ui.log.appendChild(loading);
    scrollToLatest();
    setBusy(true);

    var controller = new AbortController();
    var timedOut = false;
    var mine = {
      controller: controller,
      timer: setTimeout(function () {
        timedOut = true;
        controller.abort();
      }, config.timeoutMs),
    };
    pending = mine;

    var message = null; // the assistant message, once the passages have come
    var box = null;
    var live = null; // the model's words as they stream, replaced by the checked text

    fetch(config.api + "/ask/stream", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify(body),
      signal: controller.signal,
      credentials: "omit",
      mode: "cors",
    })
      .then(function (res) {
        if (!res.ok) {
          return res.text().then(function (text) {
            var data = null;
            try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
            throw httpError(res.status, data);
          });
        }
        if (!res.body || !res.body.getReader) throw new Error("bad-json");
        return readEvents(res.body.getReader(), onEvent);
      })
      .then(function () {
        if (pending !== mine) return;
        if (!message) throw new Error("bad-json"); // the stream ended before the passages
        finish();
      })
      .catch(function (err) {
        if (pending !== mine) return;
        finish();
        // Passages already shown: the answer stands without the composed part.
        if (message) return;
        ui.log.appendChild(renderError({ message: describeError(err, timedOut) }, index));
        scrollToLatest();
      });

    function onEvent(name, data) {
      if (pending !== mine) return;
      if (name === "passages") {
        loading.remove();
        // The composed answer gets its own time limit, from now.
        clearTimeout(mine.timer);
        mine.timer = setTimeout(function () { timedOut = true; controller.abort(); }, config.timeoutMs);
        message = { role: "assistant", response: data };
        state.messages.push(message);
        saveState();
        box = renderAnswer(data, state.messages.length - 1);
        ui.log.appendChild(box);
      } else if (name === "delta" && box && data && typeof data.text === "string") {
        if (!live) {
          live = el("p", { className: "composing", "aria-hidden": "true" });
          box.insertBefore(live, box.children[1] || null);
        }
        live.textContent += data.text;
      } else if ((name === "done" || name === "error") && message) {
        if (name === "done") message.response.generated = data && data.generated;
        else message.response.generation_error = data && data.generation_error;
        saveState();
        var checked = renderAnswer(message.response, state.messages.indexOf(message));
        box.replaceWith(checked);
        box = checked;
        live = null;
      }
      scrollToLatest();
    }

    function finish() {
      clearTimeout(mine.timer);
      pending = null;
      loading.remove();
      if (live) live.remove();
      setBusy(false);
    }
  }

  // Server-Sent Events from a fetch body: calls onEvent(name, parsed data) for each event.
  function readEvents(reader, onEvent) {
    var decoder = new TextDecoder();
    var buffer = "";
    function dispatch(block) {
      var name = "message";
      var data = [];
      block.split(/\r?\n/).forEach(function (line) {
        if (line.indexOf("event:") === 0) name = line.slice(6).trim();
        else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
      });
      if (!data.length) return;
      var parsed;
      try { parsed = JSON.parse(data.join("\n")); } catch (e) { throw new Error("bad-json"); }
      onEvent(name, parsed);
    }
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) {
          if (buffer.trim()) dispatch(buffer);
          return;
        }
        buffer += decoder.decode(chunk.value, { stream: true });
        var parts = buffer.split(/\r?\n\r?\n/);
        buffer = parts.pop();
        parts.forEach(dispatch);
        return pump();
      });
    }
    return pump();
  }

  function httpError(status, data) {
    var err = new Error("http");
    err.status = status;
    err.detail = data && data.detail;
    return err;
  }

  function detailText(detail) {
    if (typeof detail === "string") return detail.trim().replace(/[.\s]+$/, "");
    if (Array.isArray(detail)) {
      // FastAPI's validation errors: [{loc, msg, ...}]
      return detail.map(function (d) { return d && d.msg ? String(d.msg) : ""; })
        .filter(Boolean).join("; ");
    }
    return "";
  }

  function describeError(err, timedOut) {
    if (timedOut) {
      return "The archive took too long to answer (over " + Math.round(config.timeoutMs / 1000) +
        " seconds). Please try again.";
    }
    if (err && err.status) {
      var detail = detailText(err.detail);
      if (err.status >= 400 && err.status < 500) {
        return detail ? "The question could not be answered: " + detail + "."
          : "The question could not be answered (error " + err.status + ").";
      }
      return "The archive service had a problem (error " + err.status + "). Please try again.";
    }
    if (err && err.message === "bad-json") {
      return "The archive service sent an answer that could not be read. Please try again.";
    }
    return "The archive service could not be reached. Check your connection and try again.";
  }

  // ---- start ------------------------------------------------------------------------------

  function start() {
    loadState();
    build();
    renderAll();
    if (state.open) openPanel(false); // reopened after a reload: don't steal the page's focus
  }

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
