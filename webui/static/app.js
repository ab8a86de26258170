// Start page: the logout button. State-changing requests carry the
// session's CSRF token (from the page's meta tag) in X-CSRF-Token.
"use strict";
(function () {
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  var button = document.getElementById("logout");
  var error = document.getElementById("error");
  if (!button) {
    return;
  }
  button.addEventListener("click", function () {
    button.disabled = true;
    fetch("/api/v1/session", {
      method: "DELETE",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf }
    }).then(function (resp) {
      if (resp.ok || resp.status === 401) {
        window.location.assign("/login");
        return;
      }
      error.textContent = "Logging out failed (" + resp.status + ").";
      error.hidden = false;
      button.disabled = false;
    }, function () {
      error.textContent = "The gateway cannot be reached.";
      error.hidden = false;
      button.disabled = false;
    });
  });
})();
