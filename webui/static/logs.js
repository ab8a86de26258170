// Logs page: searches /api/v1/logs with the filters of the page's query
// string (the search form is a plain GET form, so a search is a URL),
// pages with the returned cursor, shows an event's details and its
// decision, and tails /api/v1/events live. Every value from the logs is
// inserted with textContent or setAttribute (Waygate.el of common.js),
// never as HTML.
"use strict";
(function () {
  var W = window.Waygate, el = W.el;
  var PARAMS = ["since", "until", "user", "client", "host", "host_suffix",
    "category", "action", "status", "kind", "q"];
  var TAIL_PARAMS = ["kind", "action", "host", "user"];
  var MAX_ROWS = 500;

  var form = document.getElementById("search");
  var rows = document.getElementById("rows");
  var more = document.getElementById("more");
  var status = document.getElementById("status");
  var error = document.getElementById("error");
  var tail = document.getElementById("tail");
  if (!form || !rows) {
    return;
  }

  var here = new URLSearchParams(window.location.search);
  var next = "";
  // Set when the last search stopped at its budget before filling the
  // page: the time it searched back to.
  var searchedTo = "";
  var source = null;

  // The export links carry the page's filters.
  function exportLinks() {
    ["csv", "jsonl"].forEach(function (format) {
      var a = document.getElementById("export-" + format);
      if (a) {
        var p = filters(PARAMS);
        p.set("format", format);
        a.setAttribute("href", "/api/v1/logs/export?" + p.toString());
      }
    });
  }

  // A datetime-local value (no zone) is local time: send it as UTC RFC
  // 3339. Dates and anything else go to the API as they are.
  function apiTime(v) {
    if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(v)) {
      var d = new Date(v);
      if (!isNaN(d.getTime())) {
        return d.toISOString();
      }
    }
    return v;
  }

  function filters(names) {
    var p = new URLSearchParams();
    names.forEach(function (name) {
      var v = here.get(name);
      if (v) {
        p.set(name, name === "since" || name === "until" ? apiTime(v) : v);
      }
    });
    return p;
  }

  function showError(msg) {
    W.show(error, msg);
  }

  function target(ev) {
    var s = ev.host || "";
    if (ev.port) {
      s += ":" + ev.port;
    }
    s += ev.path || "";
    if (ev.query) {
      s += "?" + ev.query;
    }
    return s;
  }

  function row(ev) {
    var tr = el("tr", null, "ev");
    tr.setAttribute("tabindex", "0");
    tr.setAttribute("role", "button");
    tr.setAttribute("aria-expanded", "false");
    tr.wgEvent = ev;
    var t = el("td");
    var time = el("time", W.localTime(ev.time, true));
    time.setAttribute("datetime", String(ev.time));
    t.appendChild(time);
    tr.appendChild(t);
    tr.appendChild(el("td", ev.client || ""));
    tr.appendChild(el("td", ev.user || ""));
    tr.appendChild(el("td", ev.method || ev.kind || ""));
    var where = el("td", target(ev), "target");
    where.setAttribute("title", target(ev));
    tr.appendChild(where);
    tr.appendChild(el("td", ev.status || ""));
    var action = el("td", ev.action || "");
    if (ev.action) {
      action.className = "act act-" + String(ev.action).replace(/[^a-z]/g, "");
    }
    tr.appendChild(action);
    tr.appendChild(el("td", [ev.rule, ev.category].filter(Boolean).join(" / ")));
    var bytes = el("td", W.fmtBytes(ev.bytes_in) + " / " + W.fmtBytes(ev.bytes_out), "num");
    bytes.setAttribute("title", "in " + (ev.bytes_in || 0) + " B, out " + (ev.bytes_out || 0) + " B");
    tr.appendChild(bytes);
    return tr;
  }

  function value(v) {
    if (Array.isArray(v)) {
      return v.join(", ");
    }
    if (v === null || v === undefined || v === "") {
      return "—";
    }
    return String(v);
  }

  function defList(pairs) {
    var dl = el("dl");
    pairs.forEach(function (p) {
      dl.appendChild(el("dt", p[0]));
      dl.appendChild(el("dd", value(p[1])));
    });
    return dl;
  }

  var REASONS = {
    "default": "No rule matched: the policy's default action applied.",
    "rule": "A rule of the policy matched.",
    "invalid_target": "The target was not a valid host or address.",
    "warn_accepted": "The user was warned and chose to continue.",
    "gateway": "The gateway answered this request itself (the setup check); the policy was not asked."
  };

  function details(ev) {
    var tr = el("tr", null, "details");
    var td = el("td");
    td.setAttribute("colspan", "9");
    var wrap = el("div", null, "details-body");
    var why = el("section");
    why.appendChild(el("h2", "Decision"));
    if (ev.reason && REASONS[ev.reason]) {
      why.appendChild(el("p", REASONS[ev.reason]));
    }
    why.appendChild(defList([["Action", ev.action], ["Rule", ev.rule], ["Category", ev.category],
      ["Entry", ev.entry], ["Source", ev.source], ["Reason", ev.reason], ["Policy version", ev.policy]]));
    wrap.appendChild(why);
    var all = el("section");
    all.appendChild(el("h2", "Event"));
    all.appendChild(defList(Object.keys(ev).map(function (k) { return [k, ev[k]]; })));
    wrap.appendChild(all);
    td.appendChild(wrap);
    tr.appendChild(td);
    return tr;
  }

  function toggle(tr) {
    var open = tr.nextElementSibling;
    if (open && open.classList.contains("details")) {
      open.remove();
      tr.setAttribute("aria-expanded", "false");
      return;
    }
    tr.after(details(tr.wgEvent));
    tr.setAttribute("aria-expanded", "true");
  }

  rows.addEventListener("click", function (e) {
    var tr = e.target.closest("tr.ev");
    if (tr && !window.getSelection().toString()) {
      toggle(tr);
    }
  });
  rows.addEventListener("keydown", function (e) {
    var tr = e.target;
    if (!tr.classList || !tr.classList.contains("ev")) {
      return;
    }
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      toggle(tr);
    }
  });

  function removeRow(tr) {
    var d = tr.nextElementSibling;
    if (d && d.classList.contains("details")) {
      d.remove();
    }
    tr.remove();
  }

  function count() {
    var text = rows.querySelectorAll("tr.ev").length + " events shown" +
      (source ? ", tailing live" : "") + ".";
    if (searchedTo) {
      var d = new Date(searchedTo);
      text += " Searched the events newer than " + (isNaN(d.getTime()) ? searchedTo : d.toLocaleString()) +
        "; this search reads no index, so it goes back a slice at a time.";
    }
    status.textContent = text;
  }

  function load(before) {
    var p = filters(PARAMS);
    if (before) {
      p.set("before", before);
    }
    more.disabled = true;
    status.textContent = "Searching…";
    W.api("GET", "/api/v1/logs?" + p.toString()).then(function (r) {
      if (!r.ok) {
        status.textContent = "";
        if (r.status === 401) {
          window.location.assign("/login");
        } else {
          showError((r.body && r.body.error) ? r.body.error : "Search failed (" + r.status + ").");
        }
        return;
      }
      var body = r.body;
      showError("");
      (body.events || []).forEach(function (ev) {
        rows.appendChild(row(ev));
      });
      next = body.next || "";
      searchedTo = body.partial ? body.searched_to : "";
      more.hidden = !next;
      more.textContent = searchedTo ? "Search older events" : "Next page";
      count();
    }).catch(function () {
      showError("The gateway cannot be reached.");
      status.textContent = "";
    }).then(function () {
      more.disabled = false;
    });
  }

  more.addEventListener("click", function () {
    if (next) {
      load(next);
    }
  });

  // Submit only the fields that are set, so that the URL stays short.
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var p = new URLSearchParams();
    Array.prototype.forEach.call(form.elements, function (f) {
      if (f.name && f.value) {
        p.set(f.name, f.value);
      }
    });
    var qs = p.toString();
    window.location.assign("/logs" + (qs ? "?" + qs : ""));
  });

  function stopTail() {
    if (source) {
      source.close();
      source = null;
    }
    tail.checked = false;
  }

  function startTail() {
    var p = filters(TAIL_PARAMS).toString();
    source = new EventSource("/api/v1/events" + (p ? "?" + p : ""));
    W.onJSON(source, "audit", function (ev) {
      rows.insertBefore(row(ev), rows.firstChild);
      var all = rows.querySelectorAll("tr.ev");
      for (var i = all.length - 1; i >= MAX_ROWS; i--) {
        removeRow(all[i]);
      }
      count();
    });
    source.addEventListener("dropped", function (m) {
      var n = W.droppedCount(m);
      showError("Live tail fell behind: " + (n || "some") + " events were not shown.");
    });
    source.addEventListener("open", function () {
      showError("");
      count();
    });
    source.addEventListener("error", function () {
      if (source && source.readyState === EventSource.CLOSED) {
        stopTail();
        showError("Live tail stopped: the stream was refused or closed.");
        count();
      } else {
        status.textContent = "Live tail: reconnecting…";
      }
    });
    count();
  }

  if (tail) {
    tail.disabled = typeof EventSource === "undefined";
    tail.checked = false;
    tail.addEventListener("change", function () {
      if (tail.checked) {
        startTail();
      } else {
        stopTail();
        count();
      }
    });
  }

  exportLinks();
  load("");
})();
