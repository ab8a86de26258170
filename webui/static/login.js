// Login: post the form as JSON to the API, then go to the start page.
// No inline script anywhere: the Content-Security-Policy forbids it.
"use strict";
(function () {
  var form = document.getElementById("login");
  var error = document.getElementById("error");
  var submit = document.getElementById("submit");

  function showError(text) {
    error.textContent = text; // text, never HTML
    error.hidden = false;
    document.getElementById("password").focus();
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    fetch("/api/v1/session", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        username: document.getElementById("username").value,
        password: document.getElementById("password").value
      })
    }).then(function (resp) {
      if (resp.ok) {
        window.location.assign("/");
        return;
      }
      if (resp.status === 429) {
        var wait = resp.headers.get("Retry-After") || "a few";
        showError("Too many failed attempts. Try again in " + wait + " seconds.");
        return;
      }
      if (resp.status === 401) {
        showError("Wrong user name or password.");
        return;
      }
      return resp.json().then(function (body) {
        showError((body && body.error) || ("Login failed (" + resp.status + ")."));
      }, function () {
        showError("Login failed (" + resp.status + ").");
      });
    }, function () {
      showError("The gateway cannot be reached.");
    }).finally(function () {
      submit.disabled = false;
    });
  });
})();
