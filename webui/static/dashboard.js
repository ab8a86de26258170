// Dashboard: the last hour from /api/v1/stats (refreshed every 30 s) and
// the live stream /api/v1/events. Everything that came from the network is
// inserted with textContent or as an SVG attribute, never as HTML, so that
// hostile host names, paths, users and user agents stay inert text. No
// inline script or style: the Content-Security-Policy forbids both.
"use strict";
(function () {
  var SVG = "http://www.w3.org/2000/svg";
  var main = document.getElementById("main");
  var statsURL = main.getAttribute("data-stats-url") || "/api/v1/stats";
  var eventsURL = main.getAttribute("data-events-url") || "/api/v1/events";
  var refreshMS = (parseInt(main.getAttribute("data-refresh-seconds"), 10) || 30) * 1000;
  var tickerSize = parseInt(main.getAttribute("data-ticker-size"), 10) || 20;
  var errorBox = document.getElementById("error");
  var notice = document.getElementById("notice");

  function $(id) { return document.getElementById(id); }

  function setText(id, text) { $(id).textContent = String(text); }

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  function showNotice(text) {
    notice.textContent = text;
    notice.hidden = !text;
  }

  function fmtInt(n) { return Number(n || 0).toLocaleString(); }

  function fmtBytes(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    var v = Number(n || 0), i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 ? String(v) : v.toFixed(v < 10 ? 1 : 0)) + " " + units[i];
  }

  function pad2(n) { return (n < 10 ? "0" : "") + n; }

  function hhmm(d) { return pad2(d.getHours()) + ":" + pad2(d.getMinutes()); }

  function hhmmss(d) { return hhmm(d) + ":" + pad2(d.getSeconds()); }

  // cell appends a <td> holding text to row.
  function cell(row, text, cls) {
    var td = document.createElement("td");
    td.textContent = text === undefined || text === null ? "" : String(text);
    if (cls) { td.className = cls; }
    row.appendChild(td);
    return td;
  }

  function messageRow(tbody, cols, text) {
    var tr = document.createElement("tr");
    var td = cell(tr, text, "muted");
    td.colSpan = cols;
    tbody.appendChild(tr);
  }

  function clear(node) {
    while (node.firstChild) { node.removeChild(node.firstChild); }
  }

  // Session gone: say so, with a link to log in again.
  function loggedOut() {
    clear(errorBox);
    errorBox.appendChild(document.createTextNode("Your session has ended. "));
    var a = document.createElement("a");
    a.href = "/login";
    a.textContent = "Log in again";
    errorBox.appendChild(a);
    errorBox.hidden = false;
  }

  // ---- Statistics of the last hour --------------------------------------

  function svgEl(name, attrs, text) {
    var el = document.createElementNS(SVG, name);
    for (var k in attrs) {
      if (Object.prototype.hasOwnProperty.call(attrs, k)) { el.setAttribute(k, String(attrs[k])); }
    }
    if (text !== undefined) { el.textContent = String(text); }
    return el;
  }

  // niceMax rounds up to 1, 2 or 5 times a power of ten, at least 1.
  function niceMax(v) {
    if (v <= 1) { return 1; }
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      if (steps[i] * p >= v) { return steps[i] * p; }
    }
    return 10 * p;
  }

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
    var W = 640, H = 220, L = 48, R = 12, T = 12, B = 32;
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
      messageRow(tbody, 4, "Not available.");
      return;
    }
    if (rows.length === 0) {
      messageRow(tbody, 4, "Nothing in the last hour.");
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
    ["host", "user", "category"].forEach(function (dim) { fillTop(dim, top[dim]); });
    setText("updated", "Updated at " + hhmmss(new Date()) + "; refreshed every " + refreshMS / 1000 + " seconds.");
  }

  var loading = false;

  function loadStats() {
    if (loading) { return; }
    loading = true;
    var since = new Date(Date.now() - 60 * 60 * 1000).toISOString();
    fetch(statsURL + "?step=minute&top=10&since=" + encodeURIComponent(since), {
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (resp) {
      if (resp.status === 401) {
        loggedOut();
        return;
      }
      return resp.json().then(function (body) {
        if (!resp.ok) {
          showError("Statistics: " + ((body && body.error) || ("error " + resp.status)));
          return;
        }
        showError("");
        showStats(body);
      }, function () {
        showError("Statistics: unexpected answer (" + resp.status + ").");
      });
    }, function () {
      showError("The gateway cannot be reached.");
    }).finally(function () {
      loading = false;
    });
  }

  // ---- Live stream --------------------------------------------------------

  var recentReq = [];
  var recentBlk = [];

  function prune() {
    var cutoff = Date.now() - 60000;
    while (recentReq.length && recentReq[0] < cutoff) { recentReq.shift(); }
    while (recentBlk.length && recentBlk[0] < cutoff) { recentBlk.shift(); }
    setText("live-requests", fmtInt(recentReq.length));
    setText("live-blocked", fmtInt(recentBlk.length));
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

  var source = null;
  var backoff = 1000;
  var retryTimer = 0;

  function connect() {
    retryTimer = 0;
    if (typeof EventSource === "undefined") {
      setText("live-state", "not supported by this browser");
      return;
    }
    setText("live-state", "connecting…");
    source = new EventSource(eventsURL);
    source.addEventListener("open", function () {
      backoff = 1000;
      setText("live-state", "live");
    });
    source.addEventListener("audit", function (msg) {
      var ev;
      try { ev = JSON.parse(msg.data); } catch (e) { return; }
      if (ev && typeof ev === "object") { addEvent(ev); }
    });
    source.addEventListener("dropped", function (msg) {
      var n = 0;
      try { n = JSON.parse(msg.data).dropped || 0; } catch (e) { n = 0; }
      showNotice("The live stream fell behind at " + hhmmss(new Date()) + " and skipped " + fmtInt(n) +
        " events: the live counters and the event list miss them.");
    });
    // The stream ended or failed: close it and retry ourselves, waiting
    // longer each time (1 s doubling to 60 s), so that a gateway that is
    // down or a lost session is not hammered.
    source.addEventListener("error", function () {
      if (source) { source.close(); source = null; }
      if (retryTimer) { return; }
      var wait = backoff;
      backoff = Math.min(backoff * 2, 60000);
      setText("live-state", "disconnected, retrying in " + Math.round(wait / 1000) + " s");
      retryTimer = window.setTimeout(connect, wait);
    });
  }

  window.addEventListener("pagehide", function () {
    if (source) { source.close(); source = null; }
  });
  // Back from the back-forward cache: the stream was closed above.
  window.addEventListener("pageshow", function (ev) {
    if (ev.persisted && !source && !retryTimer) { connect(); }
  });

  loadStats();
  window.setInterval(loadStats, refreshMS);
  window.setInterval(prune, 1000);
  connect();
})();
