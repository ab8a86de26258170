// Waygate's page helpers: the small pieces every page script needs, kept
// here once so that each page script (static/*.js) holds only its own
// logic. The "head" template of templates/base.html loads this file on
// every page, before the page's own script; it defines one global,
// window.Waygate, and touches no element while it loads. Page scripts
// take what they use into local names:
//
//   var W = window.Waygate, $ = W.$, el = W.el, clear = W.clear;
//
// What it offers:
//   $, el, clear, show, button, messageRow, loggedOut: building the page.
//     Text always goes in with textContent, never as HTML, so that values
//     from traffic, the config or users stay inert text.
//   csrf, api: the JSON API, with the session's cookie and, on every
//     state change, its CSRF token.
//   pad2, hhmm, hhmmss, dateTime, localTime: dates in the browser's zone.
//   fmtInt, fmtBytes, plural, copy: numbers and values.
//   svgEl, niceMax: SVG charts drawn with DOM calls (no inline style: the
//     Content-Security-Policy forbids it).
//   onJSON, droppedCount, liveStream: the live event stream
//     (/api/v1/events); liveStream follows it with reconnects.
"use strict";
(function () {
  var SVG = "http://www.w3.org/2000/svg";

  // ---- Building the page ---------------------------------------------------

  // $ is the element with id, or null.
  function $(id) { return document.getElementById(id); }

  // el makes a tag element holding text (none when text is undefined or
  // null) with the class names cls (none when empty).
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) {
      e.textContent = String(text);
    }
    if (cls) {
      e.className = cls;
    }
    return e;
  }

  // clear removes every child of node.
  function clear(node) {
    while (node.firstChild) {
      node.removeChild(node.firstChild);
    }
  }

  // show puts text in node (an error or notice line) and hides node when
  // text is empty, null or undefined.
  function show(node, text) {
    node.textContent = text || "";
    node.hidden = !text;
  }

  // button makes a type="button" button (never a submit) labelled text,
  // with the classes cls, running onClick when pressed.
  function button(text, cls, onClick) {
    var b = el("button", text, cls);
    b.type = "button";
    b.addEventListener("click", onClick);
    return b;
  }

  // messageRow appends to tbody a row of one muted cell spanning cols
  // columns, holding text ("Loading…", "Nothing yet.").
  function messageRow(tbody, cols, text) {
    var tr = el("tr");
    var td = el("td", text, "muted");
    td.colSpan = cols;
    tr.appendChild(td);
    tbody.appendChild(tr);
  }

  // loggedOut says in box (the page's error line) that the session has
  // ended, with a link to log in again: the page stays as it is, so that
  // nothing typed is lost.
  function loggedOut(box) {
    clear(box);
    box.appendChild(document.createTextNode("Your session has ended. "));
    var a = el("a", "Log in again");
    a.href = "/login";
    box.appendChild(a);
    box.hidden = false;
  }

  // ---- The JSON API ----------------------------------------------------------

  // csrf is the session's CSRF token from <meta name="csrf-token">, or ""
  // on a page without a session (an API token's, or the login page).
  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") || "" : "";
  }

  // api sends method to url with the session's cookie, asking for JSON.
  // A body (any value but undefined) goes as JSON; every method but GET
  // and HEAD carries the CSRF token in X-CSRF-Token. It resolves with
  // {status, ok, body} whatever the status (body is null when the answer
  // is not JSON, such as an empty 204) and rejects only when the gateway
  // cannot be reached. What a 401 means is the page's to decide.
  function api(method, url, body) {
    var opts = { method: method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (method !== "GET" && method !== "HEAD") {
      opts.headers["X-CSRF-Token"] = csrf();
    }
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(url, opts).then(function (resp) {
      return resp.json().then(function (b) {
        return { status: resp.status, ok: resp.ok, body: b };
      }, function () {
        return { status: resp.status, ok: resp.ok, body: null };
      });
    });
  }

  // ---- Dates, in the browser's time zone ------------------------------------

  // pad2 writes n (0 to 99) with two digits.
  function pad2(n) { return (n < 10 ? "0" : "") + n; }

  // hhmm is d's time of day as "15:04".
  function hhmm(d) { return pad2(d.getHours()) + ":" + pad2(d.getMinutes()); }

  // hhmmss is d's time of day as "15:04:05".
  function hhmmss(d) { return hhmm(d) + ":" + pad2(d.getSeconds()); }

  // dateTime is d as "2006-01-02 15:04", with ":05" when seconds is set.
  function dateTime(d, seconds) {
    return d.getFullYear() + "-" + pad2(d.getMonth() + 1) + "-" + pad2(d.getDate()) + " " +
      (seconds ? hhmmss(d) : hhmm(d));
  }

  // localTime is dateTime of the time iso (RFC 3339, as the API writes
  // times), or iso as it is when it is no time.
  function localTime(iso, seconds) {
    var d = new Date(iso);
    return isNaN(d.getTime()) ? String(iso) : dateTime(d, seconds);
  }

  // ---- Numbers and values ----------------------------------------------------

  // fmtInt writes n with the browser's digit grouping; missing is 0.
  function fmtInt(n) { return Number(n || 0).toLocaleString(); }

  // fmtBytes writes a byte count in binary units ("512 B", "1.5 KiB",
  // "12 MiB"); what is no number counts as 0.
  function fmtBytes(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    var v = Number(n) || 0, i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return (i === 0 ? String(v) : v.toFixed(v < 10 ? 1 : 0)) + " " + units[i];
  }

  // plural writes n (as fmtInt does) with the word one or many after it.
  function plural(n, one, many) { return fmtInt(n) + " " + (Number(n) === 1 ? one : many); }

  // copy is a deep copy of v, a value read from JSON.
  function copy(v) { return JSON.parse(JSON.stringify(v)); }

  // ---- SVG charts -------------------------------------------------------------

  // svgEl makes an SVG element with the attributes attrs and, unless text
  // is undefined, the text text.
  function svgEl(name, attrs, text) {
    var e = document.createElementNS(SVG, name);
    for (var k in attrs) {
      if (Object.prototype.hasOwnProperty.call(attrs, k)) { e.setAttribute(k, String(attrs[k])); }
    }
    if (text !== undefined) { e.textContent = String(text); }
    return e;
  }

  // niceMax rounds v up to 1, 2 or 5 times a power of ten, at least 1: the
  // top of a chart's scale.
  function niceMax(v) {
    if (v <= 1) { return 1; }
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      if (steps[i] * p >= v) { return steps[i] * p; }
    }
    return 10 * p;
  }

  // ---- The live event stream ------------------------------------------------

  // onJSON calls fn with the data of each event of type on source (an
  // EventSource), parsed from JSON; data that is not a JSON object is
  // skipped.
  function onJSON(source, type, fn) {
    source.addEventListener(type, function (msg) {
      var v;
      try { v = JSON.parse(msg.data); } catch (e) { return; }
      if (v && typeof v === "object") { fn(v); }
    });
  }

  // droppedCount is the count a "dropped" event of the stream carries (the
  // events the server skipped for a slow reader), or 0 when it is
  // unreadable.
  function droppedCount(msg) {
    try { return Number(JSON.parse(msg.data).dropped) || 0; } catch (e) { return 0; }
  }

  // liveStream follows the Server-Sent Events at url: on.audit(ev) gets
  // each audit event (a parsed object; others are skipped), on.dropped(n)
  // the count of events the server skipped for a slow reader, and
  // on.state(text) the state of the stream to show ("connecting…",
  // "live", "disconnected, retrying in 4 s"). A stream that ends or fails
  // is closed and opened again after a wait that doubles from 1 s to 60 s,
  // so that a gateway that is down or a lost session is not hammered. It
  // is closed when the page is put away (pagehide) and opened again when
  // the page comes back from the back-forward cache. A handler left out
  // is not called.
  function liveStream(url, on) {
    var source = null;
    var backoff = 1000;
    var retryTimer = 0;

    function state(text) {
      if (on.state) { on.state(text); }
    }

    function connect() {
      retryTimer = 0;
      if (typeof EventSource === "undefined") {
        state("not supported by this browser");
        return;
      }
      state("connecting…");
      source = new EventSource(url);
      source.addEventListener("open", function () {
        backoff = 1000;
        state("live");
      });
      onJSON(source, "audit", function (ev) {
        if (on.audit) { on.audit(ev); }
      });
      source.addEventListener("dropped", function (msg) {
        if (on.dropped) { on.dropped(droppedCount(msg)); }
      });
      source.addEventListener("error", function () {
        if (source) { source.close(); source = null; }
        if (retryTimer) { return; }
        var wait = backoff;
        backoff = Math.min(backoff * 2, 60000);
        state("disconnected, retrying in " + Math.round(wait / 1000) + " s");
        retryTimer = window.setTimeout(connect, wait);
      });
    }

    window.addEventListener("pagehide", function () {
      if (source) { source.close(); source = null; }
    });
    window.addEventListener("pageshow", function (ev) {
      if (ev.persisted && !source && !retryTimer) { connect(); }
    });
    connect();
  }

  window.Waygate = Object.freeze({
    $: $,
    el: el,
    clear: clear,
    show: show,
    button: button,
    messageRow: messageRow,
    loggedOut: loggedOut,
    csrf: csrf,
    api: api,
    pad2: pad2,
    hhmm: hhmm,
    hhmmss: hhmmss,
    dateTime: dateTime,
    localTime: localTime,
    fmtInt: fmtInt,
    fmtBytes: fmtBytes,
    plural: plural,
    copy: copy,
    svgEl: svgEl,
    niceMax: niceMax,
    onJSON: onJSON,
    droppedCount: droppedCount,
    liveStream: liveStream
  });
})();
