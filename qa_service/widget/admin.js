// The /admin page: asks for the admin token, fetches GET /admin/insights with it in the
// Authorization header (never in the URL, never stored), and shows the tables and a chart.
// Below them, the judging flow: the logged questions one at a time with the passages the
// service showed, for an editor to mark the one that answers (or a span found in the article
// view, opened from a shown passage or from any article of the archive), or "not in the
// archive"; with undo, keyboard shortcuts, the weekly precision of confident answers and the
// export. Every text from the log and the archive is inserted as text.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var QUEUE_SIZE = 20;
  var MAX_SPAN = 4000; // code points; the API refuses longer answers
  var ARTICLE_PAGE = 1000; // GET /articles pages at most this many
  var PICK_DELAY = 250;    // ms: arrowing through the article picker opens only where it stops
  var REASONS = {
    unanswered: "nothing found", not_helpful: "marked not helpful by the reader",
    low_confidence: "low confidence", confident: "answered with confidence",
  };

  var token = null;     // the admin token: in memory only, sent only in the Authorization header
  var queue = [];       // questions waiting, from GET /admin/judging
  var at = 0;           // the question shown; queue.length is "the end of the queue"
  var made = [];        // judgments made on this page, newest last: {id, question_id}, for undo
  var busy = false;     // a judgment is being saved or undone
  var article = null;   // the article in the article view: {id, text, item}
  var selection = null; // the article view's selection: {start, end, text}, offsets in code points
  var opening = 0;      // counts article loads: a load that is no longer the latest is dropped
  var pickTimer = null; // the article picker's pending open

  function el(id) { return document.getElementById(id); }

  function cell(text, className) {
    var td = document.createElement("td");
    td.textContent = String(text);
    if (className) td.className = className;
    return td;
  }

  function fill(tableId, rows) {
    var body = document.querySelector("#" + tableId + " tbody");
    body.replaceChildren();
    rows.forEach(function (cells) {
      var tr = document.createElement("tr");
      cells.forEach(function (c) { tr.appendChild(c); });
      body.appendChild(tr);
    });
  }

  function share(day) {
    return day.questions ? Math.round((100 * day.unanswered) / day.questions) + "%" : "–";
  }

  function chart(days) {
    var svg = document.getElementById("chart");
    Array.from(svg.querySelectorAll("rect, text")).forEach(function (n) { n.remove(); });
    var width = 800, height = 220, top = 10, bottom = 30;
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    var most = Math.max.apply(null, days.map(function (d) { return d.questions; }).concat([1]));
    var step = width / Math.max(days.length, 1);
    days.forEach(function (day, i) {
      var scale = (height - top - bottom) / most;
      [["bar", day.questions], ["bar missed", day.unanswered]].forEach(function (part) {
        var rect = document.createElementNS(SVG, "rect");
        rect.setAttribute("class", part[0]);
        rect.setAttribute("x", String(i * step + step * 0.15));
        rect.setAttribute("width", String(step * 0.7));
        rect.setAttribute("y", String(height - bottom - part[1] * scale));
        rect.setAttribute("height", String(part[1] * scale));
        svg.appendChild(rect);
      });
      var label = document.createElementNS(SVG, "text");
      label.setAttribute("class", "axis");
      label.setAttribute("x", String(i * step + step / 2));
      label.setAttribute("y", String(height - 10));
      label.setAttribute("text-anchor", "middle");
      label.textContent = day.day.slice(5) + " (" + share(day) + ")";
      svg.appendChild(label);
    });
  }

  function show(data) {
    fill("days-table", data.per_day.map(function (d) {
      return [cell(d.day), cell(d.questions, "n"), cell(d.unanswered, "n"), cell(share(d), "n")];
    }));
    fill("unanswered", data.unanswered.map(function (g) {
      return [cell(g.question), cell(g.count, "n"), cell(g.examples.join(" · "))];
    }));
    fill("most-asked", data.most_asked.map(function (q) { return [cell(q.question), cell(q.count, "n")]; }));
    chart(data.per_day);
    document.getElementById("report").hidden = false;
  }

  function say(text, isError) {
    var status = el("status");
    status.textContent = text;
    status.className = isError ? "note error" : "note";
  }

  function sayJudge(text, isError) {
    var status = el("judge-status");
    status.textContent = text;
    status.className = isError ? "note error" : "note";
  }

  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }

  // ---- the API ------------------------------------------------------------------------------

  function problem(code, body) {
    if (code === 401) return "That token is not the admin token.";
    var detail = body && body.detail;
    if (Array.isArray(detail)) detail = detail.map(function (d) { return d && d.msg ? d.msg : String(d); }).join("; ");
    if (typeof detail !== "string" || !detail) return "The service answered HTTP " + code + ".";
    detail = detail.charAt(0).toUpperCase() + detail.slice(1);
    return code === 409 ? detail + ": there is nothing to show or judge." : detail;
  }

  function failure(message, code) {
    var err = new Error(message);
    err.status = code;
    return err;
  }

  function unreachable() { throw failure("The service could not be reached.", 0); }

  // An admin request: the token goes in the Authorization header; the answer's JSON, or an
  // Error with a message for the editor and the HTTP status.
  function request(method, path, body) {
    var init = { method: method, headers: { Authorization: "Bearer " + token } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (data) {
        if (!res.ok) throw failure(problem(res.status, data), res.status);
        return data;
      });
    }, unreachable);
  }

  // A public request (GET /articles…): no token; the answer's JSON, or an Error as above.
  function publicJSON(path) {
    return fetch(path, { headers: { Accept: "application/json" } }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (data) {
        if (!res.ok) throw failure(problem(res.status, data), res.status);
        return data;
      });
    }, unreachable);
  }

  // include: text.js

  // ---- the queue ----------------------------------------------------------------------------

  function loadQueue() {
    sayJudge("Loading the questions to judge…", false);
    var days = el("days").value;
    return request("GET", "/admin/judging?days=" + encodeURIComponent(days) + "&limit=" + QUEUE_SIZE)
      .then(function (data) {
        queue = Array.isArray(data.questions) ? data.questions : [];
        at = 0;
        el("judge").hidden = false;
        sayJudge(plural(data.waiting, "question is", "questions are") + " waiting to be judged in the last " +
                 days + " days; " + plural(data.judged, "judgment", "judgments") + " so far.", false);
        render();
        focusQuestion(false); // ready for the keys, without scrolling past the insights
        loadArticles();
      })
      .catch(function (err) {
        // A wrong token is already said above the insights; the section stays closed.
        el("judge").hidden = err.status === 401;
        queue = [];
        render();
        sayJudge(err.message, true);
      });
  }

  function describe(judgment) {
    if (judgment.verdict === "not_in_archive") return "not in the archive";
    var text = String(judgment.text || "");
    if (text.length > 160) text = text.slice(0, 157) + "…";
    return "answered by “" + text + "”" + (judgment.speaker ? " (" + judgment.speaker + ")" : "") +
           " in " + judgment.article_id;
  }

  function answersPassage(judgment, passage) {
    return judgment.verdict === "answers" && judgment.article_id === passage.article_id &&
           judgment.start < passage.end && passage.start < judgment.end;
  }

  function button(label, key, onClick, className) {
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    if (className) b.className = className;
    if (key) {
      var k = document.createElement("kbd");
      k.textContent = key;
      b.appendChild(document.createTextNode(" "));
      b.appendChild(k);
    }
    b.addEventListener("click", onClick);
    return b;
  }

  function passageItem(item, passage, i) {
    var li = document.createElement("li");
    var judgments = item.judgments || [];
    if (judgments.some(function (j) { return answersPassage(j, passage); })) li.className = "chosen";
    var head = document.createElement("div");
    head.className = "passage-head";
    head.textContent = [
      "Passage " + (i + 1) + (passage.rank !== i + 1 ? " (shown at rank " + passage.rank + ")" : ""),
      passage.title || passage.article_id,
      passage.speaker ? passage.speaker : null,
      passage.section === "comment" ? "in the comments" : null,
    ].filter(Boolean).join(" · ");
    var text = document.createElement("p");
    text.className = "passage-text";
    text.textContent = passage.text;
    var row = document.createElement("div");
    row.className = "bar-row";
    row.appendChild(button("This answers it", i < 9 ? String(i + 1) : null, function () {
      markPassage(item, passage, i);
    }));
    row.appendChild(button("Show in the article", null, function () {
      openArticle(item, passage.article_id, passage, true);
    }, "plain"));
    if (li.className === "chosen") {
      var judged = document.createElement("span");
      judged.className = "judged";
      judged.textContent = "✓ marked as the answer";
      row.appendChild(judged);
    }
    li.appendChild(head);
    li.appendChild(text);
    li.appendChild(row);
    return li;
  }

  function render() {
    closeArticle();
    var item = queue[at];
    el("prev").disabled = at <= 0;
    el("next").disabled = at >= queue.length;
    el("position").textContent = !queue.length ? "" :
      item ? "Question " + (at + 1) + " of " + queue.length : "End of the queue";
    el("passages").replaceChildren();
    el("question-judgments").replaceChildren();
    el("not-in-archive").hidden = !item; // undo stays: the last judgment may be of the last question
    el("article-picker").hidden = !item;
    if (!item) {
      el("question-text").textContent = queue.length ? "That was the last question in the queue."
        : "No questions are waiting to be judged.";
      el("question-meta").textContent = "Reload the queue to see the questions asked since.";
      return;
    }
    el("question-text").textContent = item.question;
    el("question-meta").textContent = [
      REASONS[item.reason] || String(item.reason),
      "confidence " + item.confidence,
      "asked " + new Date(item.asked_at * 1000).toLocaleString(),
    ].join(" · ");
    (item.judgments || []).forEach(function (j) {
      var li = document.createElement("li");
      li.className = "judged";
      li.textContent = "Judged: " + describe(j) + (j.judge ? ", by " + j.judge : "") + ".";
      el("question-judgments").appendChild(li);
    });
    var passages = item.passages || [];
    passages.forEach(function (p, i) { el("passages").appendChild(passageItem(item, p, i)); });
    if (!passages.length) {
      var none = document.createElement("li");
      none.className = "muted";
      none.textContent = "The service showed no passages for this question.";
      el("passages").appendChild(none);
    }
  }

  function focusQuestion(scroll) {
    var card = el("question");
    card.focus({ preventScroll: true });
    if (scroll !== false) card.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    var next = Math.max(0, Math.min(queue.length, at + step));
    if (next === at) return;
    at = next;
    render();
  }

  // ---- judging ------------------------------------------------------------------------------

  function judge(item, body, label) {
    if (busy) return;
    busy = true;
    body.question_id = item.question_id;
    body.judge = el("judge-name").value.trim() || null;
    sayJudge("Saving…", false);
    request("POST", "/admin/judgments", body).then(function (saved) {
      busy = false;
      // The service keeps several spans that answer, but one verdict: the other one's go.
      item.judgments = (item.judgments || []).filter(function (j) {
        return saved.verdict === "answers" && j.verdict === "answers";
      }).concat([saved]);
      made.push({ id: saved.id, question_id: item.question_id });
      if (queue[at] === item) at = Math.min(at + 1, queue.length);
      render();
      focusQuestion();
      sayJudge("Saved: “" + item.question + "” — " + label + ". Press u to undo.", false);
      loadSummary();
    }, function (err) {
      busy = false;
      sayJudge(err.message, true);
    });
  }

  function markPassage(item, passage, i) {
    judge(item, { verdict: "answers", article_id: passage.article_id, start: passage.start, end: passage.end },
          "answered by passage " + (i + 1));
  }

  function notInArchive(item) {
    judge(item, { verdict: "not_in_archive", article_id: null, start: null, end: null }, "not in the archive");
  }

  function undo() {
    if (busy) return;
    var last = made[made.length - 1];
    if (!last) {
      sayJudge("Nothing to undo: no judgment was made on this page.", false);
      return;
    }
    busy = true;
    request("DELETE", "/admin/judgments/" + encodeURIComponent(last.id)).then(function (removed) {
      busy = false;
      made.pop();
      var i = queue.findIndex(function (q) { return q.question_id === last.question_id; });
      if (i >= 0) {
        queue[i].judgments = (queue[i].judgments || []).filter(function (j) { return j.id !== removed.id; });
        at = i;
      }
      render();
      focusQuestion();
      sayJudge("Undone: “" + removed.question + "” — " + describe(removed) + ".", false);
      loadSummary();
    }, function (err) {
      busy = false;
      if (err.status === 404) made.pop();
      sayJudge(err.status === 404 ? "That judgment was already removed." : err.message, true);
    });
  }

  // ---- the article view ---------------------------------------------------------------------

  function closeArticle() {
    opening++;
    clearTimeout(pickTimer);
    article = null;
    selection = null;
    el("article-view").hidden = true;
    el("article-box").replaceChildren();
    el("article-pick").value = "";
    showSelection();
  }

  // Show the picker on the article in the view (none when it is not one of the listed).
  function showPicked(id) {
    var pick = el("article-pick");
    pick.value = Array.from(pick.options).some(function (o) { return o.value === id; }) ? id : "";
  }

  // The article in the view, for the question `item`: with `passage` (a shown passage) marked
  // and scrolled to, or from its start. `focusBox` moves the focus into the article text.
  function openArticle(item, articleId, passage, focusBox) {
    closeArticle();
    var seq = opening;
    var view = el("article-view"), box = el("article-box");
    view.hidden = false;
    showPicked(articleId);
    el("article-title").textContent = "Loading the article…";
    publicJSON("/articles/" + encodeURIComponent(articleId))
      .catch(function (err) {
        throw err.status === 404 ? failure("No such article in the index: " + articleId, 404) : err;
      })
      .then(function (data) {
        if (seq !== opening || queue[at] !== item) return; // the editor moved on meanwhile
        var text = String(data.text || "");
        article = { id: String(data.id || articleId), text: text, item: item };
        el("article-title").textContent = data.title || article.id;
        var fits = passage && passage.start < passage.end && passage.end <= codePointLength(text);
        if (!fits) {
          box.textContent = text;
          box.scrollTop = 0;
          if (passage) {
            sayJudge("The passage does not fit the article any more (it may have changed); " +
                     "the whole article is shown.", true);
          }
        } else {
          var a = codeUnitIndex(text, passage.start), b = codeUnitIndex(text, passage.end);
          var mark = document.createElement("mark");
          mark.textContent = text.slice(a, b);
          box.appendChild(document.createTextNode(text.slice(0, a)));
          box.appendChild(mark);
          box.appendChild(document.createTextNode(text.slice(b)));
          box.scrollTop = Math.max(0, mark.offsetTop - 48);
        }
        showSelection();
        view.scrollIntoView({ block: "nearest" });
        if (focusBox) box.focus({ preventScroll: true });
      })
      .catch(function (err) {
        if (seq !== opening) return;
        el("article-title").textContent = "Article not available";
        sayJudge(err.message, true);
      });
  }

  // ---- the article picker: any article of the archive, for questions with no passage that answers

  // Every article of the index, page after page (GET /articles is public: no token).
  function listArticles(offset, found) {
    return publicJSON("/articles?offset=" + offset + "&limit=" + ARTICLE_PAGE).then(function (data) {
      var page = Array.isArray(data.articles) ? data.articles : [];
      found = found.concat(page);
      var next = offset + page.length;
      return page.length && next < (Number(data.total) || 0) ? listArticles(next, found) : found;
    });
  }

  function placeholder(text) {
    var option = document.createElement("option");
    option.value = "";
    option.textContent = text;
    return option;
  }

  // The picker's options: by title (the id where there is none, and beside a title that
  // several articles share), in alphabetical order so that typing a title's first letters finds it.
  function fillPicker(list) {
    var byId = {}, titles = {};
    list.forEach(function (a) {
      if (!a || typeof a.id !== "string" || byId[a.id]) return;
      var title = typeof a.title === "string" ? a.title.trim() : "";
      byId[a.id] = { id: a.id, title: title };
      if (title) titles[title] = (titles[title] || 0) + 1;
    });
    var entries = Object.keys(byId).map(function (id) {
      var e = byId[id];
      e.label = !e.title ? e.id : titles[e.title] > 1 ? e.title + " (" + e.id + ")" : e.title;
      return e;
    }).sort(function (x, y) {
      return x.label.localeCompare(y.label, undefined, { sensitivity: "base", numeric: true }) ||
             (x.id < y.id ? -1 : x.id > y.id ? 1 : 0);
    });
    var pick = el("article-pick");
    var prompt = entries.length ? "Choose one of the " + plural(entries.length, "article", "articles") + "…"
      : "The archive has no articles.";
    pick.replaceChildren(placeholder(prompt));
    entries.forEach(function (e) {
      var option = document.createElement("option");
      option.value = e.id;
      option.textContent = e.label;
      pick.appendChild(option);
    });
    pick.disabled = !entries.length;
    showPicked(article ? article.id : "");
  }

  function loadArticles() {
    var pick = el("article-pick");
    pick.disabled = true;
    pick.replaceChildren(placeholder("Loading the articles…"));
    return listArticles(0, []).then(fillPicker, function (err) {
      pick.replaceChildren(placeholder("The articles could not be listed: " + err.message));
    });
  }

  function onPick() {
    clearTimeout(pickTimer);
    var pick = el("article-pick"), id = pick.value, item = queue[at];
    if (!id) { closeArticle(); return; } // the prompt: nothing to show
    if (!item) return;
    if (article && article.id === id && article.item === item) return; // already open
    pickTimer = setTimeout(function () {
      if (pick.value === id && queue[at] === item) openArticle(item, id, null, false);
    }, PICK_DELAY);
  }

  // The selection inside the article text, in code points of the article text.
  function readSelection() {
    selection = null;
    var sel = window.getSelection(), box = el("article-box");
    if (article && sel && sel.rangeCount && !sel.isCollapsed) {
      var range = sel.getRangeAt(0);
      if (box.contains(range.startContainer) && box.contains(range.endContainer)) {
        var before = document.createRange();
        before.setStart(box, 0);
        before.setEnd(range.startContainer, range.startOffset);
        var a = before.toString().length, b = a + range.toString().length;
        var text = article.text;
        selection = {
          start: codePointLength(text.slice(0, a)), end: codePointLength(text.slice(0, b)), text: text.slice(a, b),
        };
      }
    }
    showSelection();
  }

  function showSelection() {
    var n = selection && selection.text.trim() ? selection.end - selection.start : 0;
    var tooLong = n > MAX_SPAN;
    el("mark-selection").disabled = !n || tooLong;
    el("selection-note").textContent = !n ? (article ? "Nothing selected yet." : "") :
      tooLong ? plural(n, "character", "characters") + " selected: an answer can be at most " + MAX_SPAN + "."
        : plural(n, "character", "characters") + " selected.";
  }

  function markSelection() {
    if (!article || !selection || !selection.text.trim() || queue[at] !== article.item) return;
    var span = selection;
    judge(article.item, { verdict: "answers", article_id: article.id, start: span.start, end: span.end },
          "answered by the selection in the article");
  }

  // ---- summary and export -------------------------------------------------------------------

  function loadSummary() {
    return request("GET", "/admin/judgments/summary?weeks=2").then(function (data) {
      var weeks = Array.isArray(data.weeks) ? data.weeks : [];
      fill("summary-table", weeks.map(function (w, i) {
        var label = (i === 0 ? "this week, " : i === 1 ? "last week, " : "") + w.week_start;
        var precision = w.precision === null || w.precision === undefined ? "–" : Math.round(100 * w.precision) + "%";
        return [cell(label), cell(w.confident_judged, "n"), cell(w.confident_right, "n"), cell(precision, "n")];
      }));
      el("summary-totals").textContent = plural(data.judged, "judgment", "judgments") + " in all, " +
        data.not_in_archive + " of them “not in the archive”.";
    }, function (err) {
      el("summary-totals").textContent = "The summary could not be loaded: " + err.message;
    });
  }

  function download() {
    sayJudge("Preparing the export…", false);
    fetch("/admin/judgments/export", { headers: { Authorization: "Bearer " + token } })
      .then(function (res) {
        if (res.ok) return res.blob();
        return res.json().catch(function () { return {}; }).then(function (data) {
          throw failure(problem(res.status, data), res.status);
        });
      }, unreachable)
      .then(function (blob) {
        var url = URL.createObjectURL(blob);
        var link = document.createElement("a");
        link.href = url;
        link.download = "judgments-" + new Date().toISOString().slice(0, 10) + ".jsonl";
        document.body.appendChild(link);
        link.click();
        link.remove();
        setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
        sayJudge("The judgments were downloaded in the eval format (for qa-eval and qa-calibrate).", false);
      })
      .catch(function (err) { sayJudge(err.message, true); });
  }

  // ---- keys and buttons ---------------------------------------------------------------------

  function onKey(event) {
    if (el("judge").hidden || event.altKey || event.ctrlKey || event.metaKey) return;
    var target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|SELECT|TEXTAREA)$/.test(target.tagName))) return;
    var key = event.key, item = queue[at];
    if (/^[1-9]$/.test(key)) {
      var n = parseInt(key, 10), passage = item && (item.passages || [])[n - 1];
      if (passage) markPassage(item, passage, n - 1);
      else sayJudge(item ? "This question has no passage " + n + "." : "No question is shown.", true);
    } else if (key === "n") {
      if (item) notInArchive(item);
    } else if (key === "u") {
      undo();
    } else if (key === "j" || key === "ArrowRight") {
      move(1);
      focusQuestion();
    } else if (key === "k" || key === "ArrowLeft") {
      move(-1);
      focusQuestion();
    } else if (key === "a") {
      if (!item) return;
      var pick = el("article-pick");
      if (pick.disabled) sayJudge(pick.options[0] ? pick.options[0].textContent : "No articles to open.", true);
      pick.focus({ preventScroll: true });
      pick.scrollIntoView({ block: "nearest" });
    } else {
      return;
    }
    event.preventDefault();
  }

  document.addEventListener("keydown", onKey);
  document.addEventListener("selectionchange", readSelection);
  el("prev").addEventListener("click", function () { move(-1); });
  el("next").addEventListener("click", function () { move(1); });
  el("not-in-archive").addEventListener("click", function () { if (queue[at]) notInArchive(queue[at]); });
  el("undo").addEventListener("click", undo);
  el("mark-selection").addEventListener("click", markSelection);
  el("article-pick").addEventListener("change", onPick);
  el("article-pick").addEventListener("keydown", function (event) {
    if (event.key === "Escape") { event.preventDefault(); focusQuestion(); }
  });
  el("close-article").addEventListener("click", function () { closeArticle(); focusQuestion(); });
  el("reload-queue").addEventListener("click", function () { loadQueue(); loadSummary(); });
  el("export").addEventListener("click", download);

  el("ask-token").addEventListener("submit", function (event) {
    event.preventDefault();
    token = el("token").value;
    var days = el("days").value;
    el("report").hidden = true;
    say("Loading…", false);
    request("GET", "/admin/insights?days=" + encodeURIComponent(days))
      .then(function (data) {
        say(data.questions + (data.questions === 1 ? " question" : " questions") + " in the last " +
            data.since_days + " days.", false);
        show(data);
      })
      .catch(function (err) { say(String(err.message || err), true); });
    loadQueue();
    loadSummary();
  });
})();
