// The /admin page: asks for the admin token, fetches GET /admin/insights with it in the
// Authorization header (never in the URL, never stored), and shows the tables and a chart.
// Every text from the log is inserted as text.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";

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
    var status = document.getElementById("status");
    status.textContent = text;
    status.className = isError ? "note error" : "note";
  }

  document.getElementById("ask-token").addEventListener("submit", function (event) {
    event.preventDefault();
    var token = document.getElementById("token").value;
    var days = document.getElementById("days").value;
    document.getElementById("report").hidden = true;
    say("Loading…", false);
    fetch("/admin/insights?days=" + encodeURIComponent(days), { headers: { Authorization: "Bearer " + token } })
      .then(function (res) {
        return res.json().catch(function () { return {}; }).then(function (body) {
          if (!res.ok) throw new Error(res.status === 401 ? "That token is not the admin token." : (body.detail || "HTTP " + res.status));
          return body;
        });
      })
      .then(function (data) {
        say(data.questions + (data.questions === 1 ? " question" : " questions") + " in the last " +
            data.since_days + " days.", false);
        show(data);
      })
      .catch(function (err) { say(String(err.message || err), true); });
  });
})();
