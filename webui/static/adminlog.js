// Admin log page: the config revisions (/api/v1/revisions, paged by
// revision ID) with the diff of the one selected (/api/v1/revisions/:id),
// a rollback for admins (POST /api/v1/revisions/:id/rollback, after a
// confirmation in the page, never a browser dialog), and the admin events
// (/api/v1/logs?kind=admin, paged with the cursor the API returns), with
// new ones added live from /api/v1/events?kind=admin. Every value from
// the server is inserted with textContent (Waygate.el of common.js), never
// as HTML.
"use strict";
(function () {
  var W = window.Waygate, $ = W.$, el = W.el, clear = W.clear, button = W.button, messageRow = W.messageRow;
  var REVISIONS_PAGE = 20;
  var EVENTS_PAGE = 50;
  var CONTEXT = 3; // unchanged lines shown around each change

  var main = document.getElementById("main");
  if (!main) {
    return;
  }
  var revisionsURL = main.getAttribute("data-revisions-url") || "/api/v1/revisions";
  var logsURL = main.getAttribute("data-logs-url") || "/api/v1/logs";
  var eventsURL = main.getAttribute("data-events-url") || "/api/v1/events";
  var canRollback = main.getAttribute("data-can-rollback") === "true";

  var revisionRows = $("revision-rows");
  var moreRevisions = $("more-revisions");
  var diffHead = $("diff-head");
  var diffBox = $("diff");
  var rollbackBox = $("rollback");
  var eventRows = $("event-rows");
  var moreEvents = $("more-events");
  var errorBox = $("error");
  var notice = $("notice");
  var live = $("events-live");

  var oldestRevision = 0; // ID of the last revision listed, for paging
  var selected = 0;       // ID of the revision shown
  var eventsNext = "";    // the logs API's cursor for older events
  var newestRevision = 0; // ID of the newest revision listed
  var shown = {};         // keys of the admin events in the table

  var ACTIONS = {
    "login": "Logged in",
    "login_failed": "Failed login",
    "logout": "Logged out",
    "policy_save": "Saved the policy",
    "config_rollback": "Rolled back the config",
    "routes_save": "Saved the reverse routes",
    "token_create": "Created an API token",
    "token_delete": "Deleted an API token",
    "user_create": "Created an account",
    "user_update": "Changed an account",
    "user_delete": "Deleted an account",
    "password_change": "Changed their password",
    "export": "Exported logs",
    "reload": "Reloaded the config",
    "start": "Gateway started",
    "shutdown": "Gateway stopped",
    "purge": "Purged old events"
  };

  // ---- Helpers ------------------------------------------------------------

  function showError(text) {
    W.show(errorBox, text);
  }

  function showNotice(text) {
    W.show(notice, text);
  }

  function timeCell(iso) {
    var td = el("td", null, "alog-time");
    var t = el("time", W.localTime(iso, true));
    t.setAttribute("datetime", String(iso));
    td.appendChild(t);
    return td;
  }

  // labelCells gives each cell of tr its column's header as data-label,
  // which the narrow-screen layout shows in front of the value.
  function labelCells(tr, table) {
    var heads = table.querySelectorAll("thead th");
    Array.prototype.forEach.call(tr.children, function (td, i) {
      if (heads[i]) {
        td.setAttribute("data-label", heads[i].textContent);
      }
    });
    return tr;
  }

  // request sends method (GET when empty) to url with Waygate.api. It
  // resolves with the body of a 2xx answer ({} when it is not JSON) and
  // rejects with an Error carrying status and body otherwise (after
  // showing the login link for 401).
  function request(url, method) {
    return W.api(method || "GET", url).then(function (r) {
      var body = r.body || {};
      if (r.ok) {
        return body;
      }
      if (r.status === 401) {
        W.loggedOut(errorBox);
      }
      var err = new Error(body.error ? body.error : "The gateway answered " + r.status + ".");
      err.status = r.status;
      err.body = body;
      throw err;
    }, function () {
      var err = new Error("The gateway cannot be reached.");
      err.status = 0;
      throw err;
    });
  }

  function failed(err) {
    if (err.status !== 401) {
      showError(err.message);
    }
  }

  // ---- Revisions ----------------------------------------------------------

  function markSelected() {
    Array.prototype.forEach.call(revisionRows.querySelectorAll("tr[data-id]"), function (tr) {
      var on = Number(tr.getAttribute("data-id")) === selected;
      tr.classList.toggle("alog-selected", on);
      var b = tr.querySelector("button");
      if (b) {
        b.setAttribute("aria-pressed", on ? "true" : "false");
      }
    });
  }

  function revisionRow(r) {
    var tr = el("tr");
    tr.setAttribute("data-id", String(r.id));
    var first = el("td");
    var b = el("button", "#" + r.id, "alog-pick");
    b.type = "button";
    b.setAttribute("aria-pressed", "false");
    b.setAttribute("aria-label", "Show revision " + r.id);
    b.addEventListener("click", function () {
      select(r.id);
    });
    first.appendChild(b);
    tr.appendChild(first);
    tr.appendChild(timeCell(r.time));
    tr.appendChild(el("td", r.author || "", "alog-who"));
    tr.appendChild(el("td", r.comment || "", "alog-comment"));
    tr.addEventListener("click", function (e) {
      if (e.target === b || window.getSelection().toString()) {
        return;
      }
      select(r.id);
    });
    return labelCells(tr, $("revisions"));
  }

  function loadRevisions(reset) {
    var url = revisionsURL + "?limit=" + REVISIONS_PAGE;
    if (!reset && oldestRevision) {
      url += "&before=" + oldestRevision;
    }
    moreRevisions.disabled = true;
    return request(url).then(function (body) {
      var revs = body.revisions || [];
      if (reset) {
        clear(revisionRows);
        oldestRevision = 0;
        newestRevision = revs.length ? revs[0].id : 0;
        if (!revs.length) {
          messageRow(revisionRows, 4, "No revisions yet: the config file has not been changed from this UI.");
        }
      }
      revs.forEach(function (r) {
        revisionRows.appendChild(revisionRow(r));
      });
      if (revs.length) {
        oldestRevision = revs[revs.length - 1].id;
      }
      moreRevisions.hidden = revs.length < REVISIONS_PAGE || oldestRevision <= 1;
      markSelected();
      return revs;
    }).catch(function (err) {
      if (reset) {
        clear(revisionRows);
        messageRow(revisionRows, 4, "The revisions could not be loaded.");
      }
      failed(err);
      return [];
    }).then(function (revs) {
      moreRevisions.disabled = false;
      return revs;
    });
  }

  // diffLines turns the API's diff into the lines to show: every change
  // with CONTEXT unchanged lines around it; longer unchanged runs become
  // one "unchanged lines" marker.
  function diffLines(diff) {
    var near = [];
    var i, j;
    for (i = 0; i < diff.length; i++) {
      if (diff[i].op !== " ") {
        for (j = Math.max(0, i - CONTEXT); j <= Math.min(diff.length - 1, i + CONTEXT); j++) {
          near[j] = true;
        }
      }
    }
    var out = [];
    for (i = 0; i < diff.length; i++) {
      if (near[i]) {
        out.push(diff[i]);
        continue;
      }
      for (j = i; j < diff.length && !near[j]; j++) {
        // count the unchanged run
      }
      out.push({ op: "~", count: j - i });
      i = j - 1;
    }
    return out;
  }

  function showDiff(diff) {
    clear(diffBox);
    var added = 0;
    var removed = 0;
    diffLines(diff).forEach(function (d, n) {
      if (n > 0) {
        diffBox.appendChild(document.createTextNode("\n"));
      }
      var span;
      if (d.op === "~") {
        span = el("span", "⋯ " + d.count + " unchanged line" + (d.count === 1 ? "" : "s"), "diff-line diff-skip");
      } else if (d.op === "+") {
        added++;
        span = el("span", "+ " + d.text, "diff-line diff-add");
      } else if (d.op === "-") {
        removed++;
        span = el("span", "- " + d.text, "diff-line diff-del");
      } else {
        span = el("span", "  " + d.text, "diff-line diff-ctx");
      }
      diffBox.appendChild(span);
    });
    diffBox.hidden = diff.length === 0;
    return { added: added, removed: removed };
  }

  function showRevision(body) {
    var r = body.revision || {};
    clear(diffHead);
    var head = el("p", null, "alog-diff-title");
    head.appendChild(el("strong", "Revision " + r.id));
    head.appendChild(document.createTextNode(" by "));
    head.appendChild(el("strong", r.author || "(unknown)"));
    head.appendChild(document.createTextNode(" at "));
    var when = timeCell(r.time).firstChild;
    head.appendChild(when);
    diffHead.appendChild(head);
    if (r.comment) {
      diffHead.appendChild(el("p", r.comment, "alog-comment"));
    }
    var summary = el("p", null, "muted");
    if (body.diff_omitted) {
      clear(diffBox);
      diffBox.hidden = true;
      summary.textContent = "No diff: " + body.diff_omitted + ".";
    } else {
      var counts = showDiff(body.diff || []);
      if (!body.previous) {
        summary.textContent = "The first revision kept: every line is shown as added.";
      } else if (!counts.added && !counts.removed) {
        summary.textContent = "Compared with revision " + body.previous + ": no line changed.";
      } else {
        summary.textContent = "Compared with revision " + body.previous + ": " + counts.added + " line" +
          (counts.added === 1 ? "" : "s") + " added, " + counts.removed + " removed.";
      }
    }
    diffHead.appendChild(summary);
    showRollback(r.id);
  }

  function select(id) {
    selected = id;
    markSelected();
    showError("");
    clear(diffHead);
    diffHead.appendChild(el("p", "Loading revision " + id + "…", "muted"));
    rollbackBox.hidden = true;
    return request(revisionsURL + "/" + id).then(function (body) {
      if (selected === id) {
        showRevision(body);
      }
    }).catch(failed);
  }

  // ---- Rollback -----------------------------------------------------------

  function showRollback(id) {
    clear(rollbackBox);
    if (!canRollback) {
      rollbackBox.hidden = true;
      return;
    }
    var start = button("Roll back to revision " + id, "danger", function () {
      confirmRollback(id);
    });
    start.id = "rollback-start";
    rollbackBox.appendChild(start);
    if (id === newestRevision) {
      rollbackBox.appendChild(el("p", "This is the newest revision: rolling back to it undoes only changes made " +
        "to the config file by hand since.", "muted"));
    }
    rollbackBox.hidden = false;
  }

  function confirmRollback(id) {
    clear(rollbackBox);
    var box = el("div", null, "alog-confirm");
    box.setAttribute("role", "group");
    box.setAttribute("aria-labelledby", "rollback-question");
    var q = el("p", "Make revision " + id + " the config file again? The gateway checks it like any save, " +
      "keeps the current file as a new revision, and reloads.");
    q.id = "rollback-question";
    box.appendChild(q);
    var yes = button("Yes, roll back to revision " + id, "danger", function () {
      rollback(id, yes, no);
    });
    yes.id = "rollback-yes";
    var no = button("Cancel", "secondary", function () {
      showRollback(id);
      var s = $("rollback-start");
      if (s) {
        s.focus();
      }
    });
    no.id = "rollback-cancel";
    var row = el("div", null, "alog-buttons");
    row.appendChild(yes);
    row.appendChild(no);
    box.appendChild(row);
    rollbackBox.appendChild(box);
    no.focus();
  }

  function problemsList(problems) {
    var ul = el("ul", null, "alog-problems");
    problems.forEach(function (p) {
      var li = el("li");
      if (p.path) {
        li.appendChild(el("code", p.path));
        li.appendChild(document.createTextNode(": "));
      }
      li.appendChild(document.createTextNode(p.message || ""));
      ul.appendChild(li);
    });
    return ul;
  }

  function rollback(id, yes, no) {
    yes.disabled = true;
    no.disabled = true;
    showError("");
    showNotice("");
    request(revisionsURL + "/" + id + "/rollback", "POST").then(function (body) {
      var now = body.revision || {};
      showNotice("Rolled back to revision " + id + ": the config file is now revision " + now.id +
        ", and the gateway reloads it.");
      return loadRevisions(true).then(function () {
        if (now.id) {
          select(now.id);
        }
      });
    }).catch(function (err) {
      failed(err);
      var old = $("rollback-problems");
      if (old) {
        old.remove();
      }
      if (err.body && err.body.problems && err.body.problems.length) {
        var box = el("div");
        box.id = "rollback-problems";
        box.appendChild(el("p", "What is wrong with revision " + id + " now:", "error"));
        box.appendChild(problemsList(err.body.problems));
        rollbackBox.appendChild(box);
      }
      yes.disabled = false;
      no.disabled = false;
    });
  }

  // ---- Admin events -------------------------------------------------------

  // details renders an event's detail: JSON objects as "key: value"
  // pairs, anything else as it is.
  function details(text) {
    if (!text) {
      return "";
    }
    if (text.charAt(0) === "{") {
      try {
        var obj = JSON.parse(text);
        return Object.keys(obj).filter(function (k) {
          return obj[k] !== "" && obj[k] !== null;
        }).map(function (k) {
          var v = obj[k];
          return k + ": " + (typeof v === "object" ? JSON.stringify(v) : String(v));
        }).join("; ");
      } catch (e) {
        return text;
      }
    }
    return text;
  }

  function eventRow(ev) {
    var tr = el("tr", null, "alog-event");
    tr.appendChild(timeCell(ev.time));
    tr.appendChild(el("td", ev.user || "", "alog-who"));
    var action = el("td", null, "alog-action");
    var what = el("span", ACTIONS[ev.method] || ev.method || "");
    if (ev.method && ACTIONS[ev.method]) {
      what.appendChild(document.createTextNode(" "));
      what.appendChild(el("code", ev.method, "muted"));
    }
    action.appendChild(what);
    tr.appendChild(action);
    tr.appendChild(el("td", ev.client || "—"));
    var bad = ev.error || (ev.status && ev.status >= 400);
    var result = "ok";
    if (bad) {
      result = [ev.status || "", ev.error || ""].join(" ").trim();
    }
    var cell = el("td", result, bad ? "alog-failed" : "alog-ok");
    if (ev.status) {
      cell.setAttribute("title", "HTTP status " + ev.status);
    }
    tr.appendChild(cell);
    tr.appendChild(el("td", details(ev.detail), "alog-detail"));
    return labelCells(tr, $("events"));
  }

  // eventKey identifies an admin event, so that one both found and
  // streamed is shown once.
  function eventKey(ev) {
    return [ev.time, ev.method, ev.user, ev.client, ev.status, ev.detail].join("\u0000");
  }

  function addEvent(ev, first) {
    var k = eventKey(ev);
    if (shown[k]) {
      return;
    }
    shown[k] = true;
    var empty = eventRows.querySelector("td[colspan]");
    if (empty) {
      clear(eventRows);
    }
    if (first) {
      eventRows.insertBefore(eventRow(ev), eventRows.firstChild);
    } else {
      eventRows.appendChild(eventRow(ev));
    }
  }

  // tail adds admin events to the top of the table as they happen.
  function tail() {
    if (typeof EventSource === "undefined") {
      return;
    }
    var source = new EventSource(eventsURL + "?kind=admin");
    W.onJSON(source, "audit", function (ev) {
      addEvent(ev, true);
    });
    source.addEventListener("open", function () {
      live.textContent = "Live: new admin actions appear at the top.";
    });
    source.addEventListener("error", function () {
      live.textContent = source.readyState === EventSource.CLOSED ?
        "Live updates stopped; reload the page for new admin actions." : "Live updates: reconnecting…";
    });
  }

  function loadEvents(reset) {
    var p = new URLSearchParams();
    p.set("kind", "admin");
    p.set("limit", String(EVENTS_PAGE));
    if (!reset && eventsNext) {
      p.set("before", eventsNext);
    }
    moreEvents.disabled = true;
    return request(logsURL + "?" + p.toString()).then(function (body) {
      var events = body.events || [];
      events.forEach(function (ev) {
        addEvent(ev, false);
      });
      if (reset && !events.length && !eventRows.querySelector("tr.alog-event")) {
        clear(eventRows);
        messageRow(eventRows, 6, "No admin events recorded.");
      }
      eventsNext = body.next || "";
      moreEvents.hidden = !eventsNext;
    }).catch(function (err) {
      if (reset && !eventRows.querySelector("tr.alog-event")) {
        clear(eventRows);
        messageRow(eventRows, 6, "The admin events could not be loaded.");
      }
      failed(err);
    }).then(function () {
      moreEvents.disabled = false;
    });
  }

  moreRevisions.addEventListener("click", function () {
    loadRevisions(false);
  });
  moreEvents.addEventListener("click", function () {
    loadEvents(false);
  });

  tail();
  loadRevisions(true);
  loadEvents(true);
})();
