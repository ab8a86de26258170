// Setup page: the "am I going through Waygate?" check. It loads the tiny
// image the forward proxy answers itself (data-check-image on <main>, a
// name under .invalid that resolves nowhere), with a random query so that
// no cache answers for the proxy: loaded means this browser goes through
// Waygate, failed means it does not. On an HTTPS page browsers refuse the
// plain-HTTP image (mixed content), so there the page only offers the
// check page in a new tab. Text goes in with textContent only (Waygate.el
// of common.js).
"use strict";
(function () {
  var W = window.Waygate;
  var TIMEOUT_MS = 10000;
  var main = document.getElementById("main");
  var result = document.getElementById("check-result");
  var again = document.getElementById("check-again");
  if (!main || !result) {
    return;
  }
  var image = main.getAttribute("data-check-image") || "";
  var tls = main.getAttribute("data-tls") === "true" || window.location.protocol === "https:";
  var pending = null; // the image being loaded, if any
  var timer = 0;

  function show(state, title, text) {
    result.className = "setup-check check-" + state;
    W.clear(result);
    result.appendChild(W.el("strong", title));
    if (text) {
      result.appendChild(document.createTextNode(" " + text));
    }
  }

  function nonce() {
    var b = new Uint32Array(2);
    if (window.crypto && window.crypto.getRandomValues) {
      window.crypto.getRandomValues(b);
    } else {
      b[0] = Math.floor(Math.random() * 4294967296);
      b[1] = Date.now() % 4294967296;
    }
    return b[0].toString(36) + b[1].toString(36);
  }

  function finish(probe, ok, why) {
    if (probe !== pending) {
      return; // an older check, overtaken by "Check again"
    }
    pending = null;
    window.clearTimeout(timer);
    if (again) {
      again.disabled = false;
    }
    if (ok) {
      show("yes", "Yes, through Waygate.", "This browser's requests go through the proxy.");
    } else {
      show("no", "No, not through Waygate.", why);
    }
  }

  function run() {
    if (!image) {
      show("off", "The automatic check is not available here.", "Open the check page in a new tab.");
      return;
    }
    if (tls) {
      show("off", "Open the check page in a new tab.",
        "This page is served over HTTPS, where browsers do not load the plain-HTTP check image.");
      if (again) {
        again.hidden = true;
      }
      return;
    }
    var probe = new Image();
    pending = probe;
    if (again) {
      again.disabled = true;
    }
    show("wait", "Checking this browser…", "");
    probe.addEventListener("load", function () {
      finish(probe, true, "");
    });
    probe.addEventListener("error", function () {
      finish(probe, false, "The check image did not load, so this browser does not use the proxy" +
        " (or the proxy wants a sign-in the image cannot give: open the check page in a new tab to see).");
    });
    window.clearTimeout(timer);
    timer = window.setTimeout(function () {
      finish(probe, false, "Waygate did not answer within " + (TIMEOUT_MS / 1000) + " seconds.");
    }, TIMEOUT_MS);
    probe.src = image + (image.indexOf("?") < 0 ? "?" : "&") + "r=" + nonce();
  }

  if (again) {
    again.addEventListener("click", run);
  }
  run();
})();
