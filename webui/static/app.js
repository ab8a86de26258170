// Every page with a session: the logout button (DELETE /api/v1/session,
// with the session's CSRF token, through Waygate.api of common.js).
"use strict";
(function () {
  var W = window.Waygate;
  var button = document.getElementById("logout");
  var error = document.getElementById("error");
  if (!button) {
    return;
  }
  button.addEventListener("click", function () {
    button.disabled = true;
    W.api("DELETE", "/api/v1/session").then(function (r) {
      if (r.ok || r.status === 401) {
        window.location.assign("/login");
        return;
      }
      W.show(error, "Logging out failed (" + r.status + ").");
      button.disabled = false;
    }, function () {
      W.show(error, "The gateway cannot be reached.");
      button.disabled = false;
    });
  });
})();
