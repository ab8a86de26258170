// Proxy lab: runs the forward and reverse demonstrations (POST
// /api/v1/lab/forward and /api/v1/lab/reverse, with the session's CSRF
// token) and shows both sides of each, and counts live forward and reverse
// traffic from the event stream /api/v1/events. Every value from the
// network is inserted with textContent or as an SVG attribute (the helpers
// of common.js), never as HTML. No inline script or style: the
// Content-Security-Policy forbids both.
"use strict";
(function () {
  var W = window.Waygate, $ = W.$, el = W.el, clear = W.clear, svgEl = W.svgEl, niceMax = W.niceMax;
  var main = document.getElementById("main");
  var eventsURL = main.getAttribute("data-events-url") || "/api/v1/events";
  var errorBox = document.getElementById("error");

  // ---- Tables of what each side sent or saw -------------------------------

  // kvTable fills table with rows [name, value, telling, note]: telling
  // rows are highlighted, with note (read by screen readers too) saying
  // why.
  function kvTable(table, rows) {
    var tbody = table.tBodies[0];
    clear(tbody);
    rows.forEach(function (r) {
      var tr = document.createElement("tr");
      if (r.section) {
        var th = el("th", r.section, "kv-section");
        th.colSpan = 2;
        th.scope = "colgroup";
        tr.appendChild(th);
        tbody.appendChild(tr);
        return;
      }
      var name = el("th", r.name);
      name.scope = "row";
      tr.appendChild(name);
      var td = el("td", r.value === "" ? "(empty)" : r.value, r.missing ? "missing" : "");
      if (r.telling) {
        tr.className = "telling";
        if (r.note) { td.appendChild(el("span", r.note, "why")); }
      }
      tr.appendChild(td);
      tbody.appendChild(tr);
    });
  }

  function messageTable(table, text) {
    var tbody = table.tBodies[0];
    clear(tbody);
    W.messageRow(tbody, 2, text);
  }

  // headerRows turns [{name, value}] into rows, highlighting the names in
  // telling (name -> note).
  function headerRows(headers, telling) {
    return (headers || []).map(function (h) {
      var note = telling && Object.prototype.hasOwnProperty.call(telling, h.name) ? telling[h.name] : "";
      return { name: h.name, value: h.value, telling: !!note, note: note };
    });
  }

  function hasHeader(headers, name) {
    return (headers || []).some(function (h) { return h.name === name; });
  }

  function facts(list, items) {
    clear(list);
    (items || []).forEach(function (f) {
      var li = el("li", null, f.holds ? "fact holds" : "fact differs");
      var mark = el("span", f.holds ? "✓" : "!", "mark");
      mark.setAttribute("aria-hidden", "true");
      li.appendChild(mark);
      li.appendChild(el("span", f.holds ? "As expected: " : "Differs from the usual: ", "sr-only"));
      li.appendChild(el("span", f.text));
      li.setAttribute("data-key", f.key || "");
      list.appendChild(li);
    });
  }

  // refused shows an answer the gateway made itself.
  function refused(box, ans, who) {
    clear(box);
    if (!ans) {
      box.hidden = true;
      return;
    }
    box.appendChild(el("h3", "The gateway answered itself: " + ans.status + " " + (ans.title || "")));
    if (ans.message) { box.appendChild(el("p", ans.message)); }
    if (ans.details && ans.details.length) {
      var dl = el("dl");
      ans.details.forEach(function (d) {
        dl.appendChild(el("dt", d.name));
        dl.appendChild(el("dd", d.value));
      });
      box.appendChild(dl);
    }
    box.appendChild(el("p", "The request never reached the " + who + ".", "muted"));
    box.hidden = false;
  }

  // setAddr shows an address in the diagram, letting it wrap before the
  // port only.
  function setAddr(kind, part, text) {
    var span = $(kind + "-addr-" + part);
    clear(span);
    text = String(text || "–");
    var i = text.lastIndexOf(":");
    if (i <= 0) {
      span.textContent = text;
      return;
    }
    span.appendChild(document.createTextNode(text.slice(0, i)));
    span.appendChild(document.createElement("wbr"));
    span.appendChild(document.createTextNode(text.slice(i)));
  }

  function fmtDate(s) {
    var d = new Date(s);
    return isNaN(d.getTime()) ? String(s || "") : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  function hostOf(url) {
    try { return new URL(url).host; } catch (e) { return ""; }
  }

  function showForward(res) {
    var c = res.client || {};
    setAddr("forward", "client", c.address);
    setAddr("forward", "gateway", c.proxy);
    setAddr("forward", "server", hostOf(c.url));
    facts($("forward-facts"), res.facts);
    refused($("forward-refused"), res.refused, "origin");

    var rows = [
      { name: "Client address", value: c.address || "(no connection)", telling: true, note: "the client's own address" },
      { name: "Connected to", value: c.proxy, telling: true, note: "the forward proxy, not the origin" },
      { name: "Request line", value: c.request_line || "(not sent)", telling: !!c.request_line, note: "the whole URL: the proxy is asked for another site" }
    ];
    rows = rows.concat(headerRows(c.headers));
    if (c.status) {
      rows.push({ section: "The answer it got" });
      rows.push({ name: "Status", value: String(c.status) });
      rows = rows.concat(headerRows(c.response_headers, { "Via": "added by the gateway on the way back" }));
    }
    kvTable($("forward-client"), rows);

    var o = res.origin;
    if (!o) {
      messageTable($("forward-server"), res.refused ? "Nothing: the gateway refused the request." : "Nothing: no request reached it.");
      return;
    }
    var srows = [
      { name: "Connection from", value: o.remote_addr, telling: true, note: "the gateway's address, not the client's" },
      { name: "Request line", value: o.method + " " + o.target + " " + o.proto },
      { name: "Host", value: o.host }
    ];
    srows = srows.concat(headerRows(o.headers, {
      "Via": "a proxy carried the request",
      "X-Forwarded-For": "the client's address: sent because proxy.forwarded_for is on",
      "Forwarded": "the client's address"
    }));
    ["X-Forwarded-For", "Forwarded"].forEach(function (name) {
      if (!hasHeader(o.headers, name)) {
        srows.push({ name: name, value: "(not sent)", missing: true, telling: true, note: "no client address reaches the origin" });
      }
    });
    kvTable($("forward-server"), srows);
  }

  var securityHeaders = {
    "Strict-Transport-Security": "added by the gateway",
    "X-Content-Type-Options": "added by the gateway",
    "X-Frame-Options": "added by the gateway",
    "Referrer-Policy": "added by the gateway",
    "Content-Security-Policy": "added by the gateway"
  };

  function showReverse(res) {
    var c = res.client || {};
    setAddr("reverse", "client", c.address);
    setAddr("reverse", "gateway", c.connected);
    setAddr("reverse", "server", res.app_address);
    facts($("reverse-facts"), res.facts);
    refused($("reverse-refused"), res.refused, "app");

    var rows = [
      { name: "Client address", value: c.address || "(no connection)", telling: true, note: "the client's own address" },
      { name: "Connected to", value: c.connected, telling: true, note: "the gateway: the only address the client learns" },
      { name: "URL", value: c.url },
      { name: "TLS", value: c.tls_version ? c.tls_version + (c.alpn ? ", ALPN " + c.alpn : "") : "(no TLS connection)" }
    ];
    var cert = c.certificate;
    if (cert) {
      rows.push({ section: "The certificate it was shown" });
      rows.push({ name: "Subject", value: cert.subject, telling: true, note: "the gateway's certificate, not the app's" });
      rows.push({ name: "Issuer", value: cert.issuer + (cert.self_signed ? " (self-signed)" : "") });
      rows.push({ name: "SHA-256", value: cert.sha256, telling: true, note: "the fingerprint of the gateway's certificate" });
      rows.push({ name: "Names", value: (cert.dns_names || []).concat(cert.ip_addresses || []).join(", ") });
      rows.push({ name: "Valid", value: fmtDate(cert.not_before) + " to " + fmtDate(cert.not_after) });
    }
    if (c.status) {
      rows.push({ section: "The answer it got" });
      rows.push({ name: "Status", value: c.status + " " + (c.proto || "") });
      rows = rows.concat(headerRows(c.response_headers, securityHeaders));
    }
    kvTable($("reverse-client"), rows);

    var a = res.app;
    if (!a) {
      messageTable($("reverse-server"), res.refused ? "Nothing: the gateway answered itself." : "Nothing: no request reached it.");
      return;
    }
    var srows = [
      { name: "Connection from", value: a.remote_addr, telling: true, note: "the gateway, not the client" },
      { name: "TLS on this connection", value: a.tls, telling: true, note: "the gateway terminated TLS" },
      { name: "Request line", value: a.method + " " + a.target + " " + a.proto },
      { name: "Host", value: a.host, telling: true, note: "the name the client asked for, kept" }
    ];
    srows = srows.concat(headerRows(a.headers, {
      "X-Forwarded-For": "the client's address, told by the gateway",
      "X-Forwarded-Proto": "the client's protocol",
      "Forwarded": "the same, in the standard header (RFC 7239)"
    }));
    kvTable($("reverse-server"), srows);
  }

  // ---- Running a demonstration ------------------------------------------

  function setup(kind, show) {
    var button = $("run-" + kind);
    var status = $(kind + "-status");
    var url = main.getAttribute("data-" + kind + "-url");
    if (!button) { return; }
    button.addEventListener("click", function () {
      button.disabled = true;
      main.classList.add("running-" + kind);
      status.className = "muted";
      status.textContent = "Running…";
      W.api("POST", url).then(function (r) {
        if (r.status === 401) {
          W.loggedOut(errorBox);
          status.textContent = "Not run: your session has ended.";
          return;
        }
        if (r.body === null) {
          status.className = "error";
          status.textContent = "Not run: unexpected answer (" + r.status + ").";
          return;
        }
        if (!r.ok) {
          status.className = "error";
          status.textContent = "Not run: " + ((r.body && r.body.error) || ("error " + r.status));
          return;
        }
        W.show(errorBox, "");
        var res = r.body[kind] || {};
        show(res);
        var took = " (" + (res.millis || 0) + " ms)";
        if (res.ok) {
          status.className = "ok";
          status.textContent = "Done at " + new Date().toLocaleTimeString() + took + ".";
        } else if (res.refused) {
          status.className = "error";
          status.textContent = "Refused by the gateway: " + res.refused.status + " " + (res.refused.title || "") + took + ".";
        } else {
          status.className = "error";
          status.textContent = (res.error || "The demonstration failed.") + took;
        }
      }, function () {
        status.className = "error";
        status.textContent = "Not run: the gateway cannot be reached.";
      }).finally(function () {
        button.disabled = false;
        main.classList.remove("running-" + kind);
      });
    });
  }

  setup("forward", showForward);
  setup("reverse", showReverse);

  // ---- Live counters --------------------------------------------------------

  var opened = Date.now();
  var counts = { forward: 0, reverse: 0 };
  // Per second, for the last 60 seconds: second index -> count.
  var perSecond = { forward: {}, reverse: {} };

  function sideOf(ev) {
    if (ev.kind === "http" || ev.kind === "connect") { return "forward"; }
    if (ev.kind === "reverse") { return "reverse"; }
    return "";
  }

  function second(t) { return Math.floor(t / 1000); }

  function rate(side, now) {
    // The last 10 seconds, the current one included; a page younger than
    // that divides by the seconds it saw.
    var n = 0, s = second(now);
    for (var i = 0; i < 10; i++) { n += perSecond[side][s - i] || 0; }
    return n / Math.max(1, Math.min(10, s - second(opened) + 1));
  }

  // drawChart draws the last 60 seconds at the box's own width, so that
  // the labels keep their size on a phone and on a wide screen.
  function drawChart(now) {
    var box = $("lab-chart");
    var W = Math.max(280, Math.round(box.clientWidth || 640)), H = 130, L = 36, R = 8, T = 8, B = 22, N = 60;
    var pw = W - L - R, ph = H - T - B;
    var s = second(now);
    var max = 0;
    ["forward", "reverse"].forEach(function (side) {
      for (var i = 0; i < N; i++) { max = Math.max(max, perSecond[side][s - i] || 0); }
    });
    max = niceMax(max);
    function x(i) { return L + (i * pw) / (N - 1); }
    function y(v) { return T + ph - (v * ph) / max; }
    var svg = svgEl("svg", { viewBox: "0 0 " + W + " " + H, class: "chart-svg", role: "img",
      "aria-labelledby": "lab-chart-title", focusable: "false" });
    svg.appendChild(svgEl("title", { id: "lab-chart-title" }, "Forward and reverse requests per second, last 60 seconds"));
    [0, max].forEach(function (v) {
      svg.appendChild(svgEl("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
      svg.appendChild(svgEl("text", { x: L - 6, y: y(v) + 4, class: "axis-label", "text-anchor": "end" }, v));
    });
    svg.appendChild(svgEl("text", { x: L, y: H - 6, class: "axis-label" }, "60 s ago"));
    svg.appendChild(svgEl("text", { x: W - R, y: H - 6, class: "axis-label", "text-anchor": "end" }, "now"));
    [["forward", "line-fwd"], ["reverse", "line-rev"]].forEach(function (p) {
      var pts = [];
      for (var i = 0; i < N; i++) {
        var v = perSecond[p[0]][s - N + 1 + i] || 0;
        pts.push(x(i).toFixed(1) + "," + y(v).toFixed(1));
      }
      svg.appendChild(svgEl("polyline", { points: pts.join(" "), class: p[1] }));
    });
    clear(box);
    box.appendChild(svg);
  }

  function tick() {
    var now = Date.now();
    var cutoff = second(now) - 61;
    ["forward", "reverse"].forEach(function (side) {
      for (var k in perSecond[side]) {
        if (Object.prototype.hasOwnProperty.call(perSecond[side], k) && Number(k) < cutoff) { delete perSecond[side][k]; }
      }
      $("count-" + side).textContent = counts[side].toLocaleString();
      $("rate-" + side).textContent = rate(side, now).toFixed(1);
    });
    drawChart(now);
  }

  function addEvent(ev) {
    var side = sideOf(ev);
    if (!side) { return; }
    counts[side]++;
    var s = second(Date.now());
    perSecond[side][s] = (perSecond[side][s] || 0) + 1;
    $("count-" + side).textContent = counts[side].toLocaleString();
    // Redraw once per frame however many events arrive in it.
    if (!pending) {
      pending = true;
      window.requestAnimationFrame(function () {
        pending = false;
        tick();
      });
    }
  }

  var pending = false;

  tick();
  window.setInterval(tick, 1000);
  W.liveStream(eventsURL, {
    state: function (text) { $("live-state").textContent = text; },
    audit: addEvent,
    dropped: function (n) {
      W.show($("lab-notice"), "The live stream fell behind and skipped " + n.toLocaleString() + " events: the counters miss them.");
    }
  });
})();
