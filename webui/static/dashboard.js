// Dashboard: the last hour from /api/v1/stats (refreshed every 30 s) and
// the live stream /api/v1/events. Everything that came from the network is
// inserted with textContent or as an SVG attribute (the helpers of
// common.js), never as HTML, so that hostile host names, paths, users and
// user agents stay inert text. No inline script or style: the
// Content-Security-Policy forbids both.
"use strict";
(function () {
  var W = window.Waygate, $ = W.$, el = W.el, clear = W.clear, svgEl = W.svgEl, niceMax = W.niceMax;
  var fmtInt = W.fmtInt, fmtBytes = W.fmtBytes, hhmm = W.hhmm, hhmmss = W.hhmmss;
  var main = document.getElementById("main");
  var statsURL = main.getAttribute("data-stats-url") || "/api/v1/stats";
  var eventsURL = main.getAttribute("data-events-url") || "/api/v1/events";
  var refreshMS = (parseInt(main.getAttribute("data-refresh-seconds"), 10) || 30) * 1000;
  var tickerSize = parseInt(main.getAttribute("data-ticker-size"), 10) || 20;
  var errorBox = document.getElementById("error");
  var notice = document.getElementById("notice");

  function setText(id, text) { $(id).textContent = String(text); }

  function showError(text) { W.show(errorBox, text); }

  function showNotice(text) { W.show(notice, text); }

  // cell appends a <td> holding text to row.
  function cell(row, text, cls) {
    var td = el("td", text, cls);
    row.appendChild(td);
    return td;
  }

  // ---- Statistics of the last hour --------------------------------------

  // slots spreads the buckets over every minute from since to until, so
  // that minutes without traffic (which the store may leave out) are 0.
  function slots(data) {
    var start = Math.floor(Date.parse(data.since) / 60000) * 60000;
    var end = Date.parse(data.until);
    var n = Math.max(1, Math.min(1440, Math.ceil((end - start) / 60000)));
    var out = [];
    for (var i = 0; i < n; i++) { out.push({ t: start + i * 60000, requests: 0, blocked: 0 }); }
    (data.series || []).forEach(function (b) {
      var i = Math.floor((Date.parse(b.start) - start) / 60000);
      if (i >= 0 && i < n) {
        out[i].requests += b.requests || 0;
        out[i].blocked += b.blocked || 0;
      }
    });
    return out;
  }

  function drawChart(points) {
    // As wide as its box (so that the labels keep their size), at least
    // as wide as a phone.
    var box = document.getElementById("chart");
    var W = Math.max(300, Math.round((box && box.clientWidth) || 640)), H = 220, L = 48, R = 12, T = 12, B = 32;
    var pw = W - L - R, ph = H - T - B;
    var max = 0;
    points.forEach(function (p) { max = Math.max(max, p.requests, p.blocked); });
    max = niceMax(max);
    var n = points.length;
    function x(i) { return L + (n > 1 ? (i * pw) / (n - 1) : pw / 2); }
    function y(v) { return T + ph - (v * ph) / max; }

    var svg = svgEl("svg", { viewBox: "0 0 " + W + " " + H, class: "chart-svg", role: "img",
      "aria-labelledby": "chart-title", focusable: "false" });
    svg.appendChild(svgEl("title", { id: "chart-title" }, "Requests and blocked requests per minute, last hour"));

    // Horizontal grid lines with y labels at 0, max/2 and max.
    [0, max / 2, max].forEach(function (v) {
      svg.appendChild(svgEl("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
      svg.appendChild(svgEl("text", { x: L - 6, y: y(v) + 4, class: "axis-label", "text-anchor": "end" },
        Number.isInteger(v) ? fmtInt(v) : v.toFixed(1)));
    });
    // Axes.
    svg.appendChild(svgEl("line", { x1: L, x2: L, y1: T, y2: T + ph, class: "axis" }));
    svg.appendChild(svgEl("line", { x1: L, x2: W - R, y1: T + ph, y2: T + ph, class: "axis" }));
    // X labels: the start, quarters and end of the range, as local times.
    [0, 0.25, 0.5, 0.75, 1].forEach(function (f) {
      var i = Math.round(f * (n - 1));
      var anchor = f === 0 ? "start" : (f === 1 ? "end" : "middle");
      svg.appendChild(svgEl("line", { x1: x(i), x2: x(i), y1: T + ph, y2: T + ph + 4, class: "axis" }));
      svg.appendChild(svgEl("text", { x: x(i), y: H - 10, class: "axis-label", "text-anchor": anchor },
        hhmm(new Date(points[i].t))));
    });
    svg.appendChild(svgEl("text", { x: 4, y: T + 2, class: "axis-label", "dominant-baseline": "hanging" }, "/min"));

    function line(key, cls) {
      var pts = points.map(function (p, i) { return x(i).toFixed(1) + "," + y(p[key]).toFixed(1); });
      svg.appendChild(svgEl("polyline", { points: pts.join(" "), class: cls }));
    }
    line("requests", "line-req");
    line("blocked", "line-blk");

    var box = $("chart");
    clear(box);
    box.appendChild(svg);

    var peak = 0, peakAt = 0;
    points.forEach(function (p, i) { if (p.requests > peak) { peak = p.requests; peakAt = i; } });
    setText("chart-summary", peak > 0
      ? "Busiest minute: " + hhmm(new Date(points[peakAt].t)) + " with " + fmtInt(peak) + " requests."
      : "No requests in the last hour.");
  }

  function fillTop(dim, rows) {
    var tbody = $("top-" + dim).tBodies[0];
    clear(tbody);
    if (!rows) {
      W.messageRow(tbody, 4, "Not available.");
      return;
    }
    if (rows.length === 0) {
      W.messageRow(tbody, 4, "Nothing in the last hour.");
      return;
    }
    rows.forEach(function (r) {
      var tr = document.createElement("tr");
      cell(tr, r.key === "" ? "(none)" : r.key, "key");
      cell(tr, fmtInt(r.requests), "num");
      cell(tr, fmtInt(r.blocked), "num");
      cell(tr, fmtBytes(r.bytes_out), "num");
      tbody.appendChild(tr);
    });
  }

  function showStats(data) {
    var req = 0, blk = 0, bin = 0, bout = 0;
    (data.series || []).forEach(function (b) {
      req += b.requests || 0;
      blk += b.blocked || 0;
      bin += b.bytes_in || 0;
      bout += b.bytes_out || 0;
    });
    setText("total-requests", fmtInt(req));
    setText("total-blocked", fmtInt(blk));
    setText("total-bytes-in", fmtBytes(bin));
    setText("total-bytes-out", fmtBytes(bout));
    drawChart(slots(data));
    var top = data.top || {};
    ["host", "user", "category", "error"].forEach(function (dim) { fillTop(dim, top[dim]); });
    setText("updated", "Updated at " + hhmmss(new Date()) + "; refreshed every " + refreshMS / 1000 + " seconds.");
  }

  var loading = false;

  function loadStats() {
    if (loading) { return; }
    loading = true;
    var since = new Date(Date.now() - 60 * 60 * 1000).toISOString();
    W.api("GET", statsURL + "?step=minute&top=10&since=" + encodeURIComponent(since)).then(function (r) {
      if (r.status === 401) {
        W.loggedOut(errorBox);
        return;
      }
      if (r.body === null) {
        showError("Statistics: unexpected answer (" + r.status + ").");
        return;
      }
      if (!r.ok) {
        showError("Statistics: " + ((r.body && r.body.error) || ("error " + r.status)));
        return;
      }
      showError("");
      showStats(r.body);
    }, function () {
      showError("The gateway cannot be reached.");
    }).finally(function () {
      loading = false;
    });
  }

  // ---- Live stream --------------------------------------------------------

  var recentReq = [];
  var recentBlk = [];
  var recentErr = [];

  function prune() {
    var cutoff = Date.now() - 60000;
    [recentReq, recentBlk, recentErr].forEach(function (times) {
      while (times.length && times[0] < cutoff) { times.shift(); }
    });
    setText("live-requests", fmtInt(recentReq.length));
    setText("live-blocked", fmtInt(recentBlk.length));
    setText("live-errors", fmtInt(recentErr.length));
  }

  function target(ev) {
    var host = ev.host || "";
    if (ev.port && !ev.path) { host += ":" + ev.port; }
    return host + (ev.path || "");
  }

  function addEvent(ev) {
    var now = Date.now();
    if (ev.kind !== "admin") {
      recentReq.push(now);
      if (ev.action === "block") { recentBlk.push(now); }
      if (ev.error) { recentErr.push(now); }
    }
    prune();

    var tbody = $("ticker").tBodies[0];
    var placeholder = tbody.querySelector("tr.placeholder");
    if (placeholder) { tbody.removeChild(placeholder); }
    var tr = document.createElement("tr");
    var t = new Date(ev.time);
    cell(tr, isNaN(t.getTime()) ? "" : hhmmss(t));
    cell(tr, ev.client);
    cell(tr, ev.user);
    cell(tr, ev.method);
    cell(tr, target(ev), "key");
    cell(tr, ev.status ? ev.status : "", "num");
    cell(tr, ev.action, ev.action === "block" ? "blocked" : "");
    tbody.insertBefore(tr, tbody.firstChild);
    while (tbody.rows.length > tickerSize) { tbody.removeChild(tbody.lastChild); }
  }

  loadStats();
  window.setInterval(loadStats, refreshMS);
  window.setInterval(prune, 1000);
  W.liveStream(eventsURL, {
    state: function (text) { setText("live-state", text); },
    audit: addEvent,
    dropped: function (n) {
      showNotice("The live stream fell behind at " + hhmmss(new Date()) + " and skipped " + fmtInt(n) +
        " events: the live counters and the event list miss them.");
    }
  });
})();
