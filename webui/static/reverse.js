// Reverse page: the routes of the config file (/api/v1/reverse/routes)
// with their backends' live health (/api/v1/reverse), refreshed every few
// seconds in place (cells change, nothing is rebuilt unless the routes
// changed), and, for admins, a form to add or edit a route and an in-page
// confirmation to delete one; both save the whole list with PUT
// /api/v1/reverse/routes and the version it was read at. Problems come
// back with paths ("routes[2].backends[0].url") and are shown next to
// their field. Everything from the config or the network is inserted with
// textContent (Waygate.el of common.js), never as HTML; no inline style
// (the CSP forbids it).
"use strict";
(function () {
  var W = window.Waygate, $ = W.$, el = W.el, clear = W.clear, show = W.show;
  var num = W.fmtInt, copy = W.copy, plural = W.plural, clock = W.hhmmss;
  var main = document.getElementById("main");
  if (!main || !document.getElementById("routes")) {
    return;
  }
  var routesURL = main.getAttribute("data-routes-url") || "/api/v1/reverse/routes";
  var statusURL = main.getAttribute("data-status-url") || "/api/v1/reverse";
  var refreshMS = (parseInt(main.getAttribute("data-refresh-seconds"), 10) || 3) * 1000;
  var canEdit = main.getAttribute("data-can-edit") === "true";

  var list = $("routes");
  var errorBox = $("error");
  var notice = $("notice");
  var savedBox = $("saved");
  var summary = $("summary");
  var updated = $("updated");
  var addButton = $("add-route");
  var form = $("route-form");

  var doc = null;      // the last RoutesDoc: {version, routes, listeners}
  var running = null;  // the last status: {enabled, routes}
  var cards = {};      // route name -> the live cells of its card
  var editing = null;  // while the form is open: {index (-1: new), base (a copy of doc)}
  var timer = 0;
  var loading = false;
  var refreshFailed = false;
  // openForm opens the form on route index (-1: a new route); set below
  // for admins.
  var openForm = function () {};

  // ---- Small helpers -----------------------------------------------------

  // setText changes a node's text only when it differs, so that a refresh
  // touches nothing that did not change.
  function setText(node, text) {
    text = String(text);
    if (node.textContent !== text) {
      node.textContent = text;
    }
  }

  function setClass(node, cls) {
    if (node.className !== cls) {
      node.className = cls;
    }
  }

  // when formats a time of the status; Go's zero time means never.
  function when(iso) {
    var d = new Date(iso);
    if (!iso || isNaN(d.getTime()) || d.getFullYear() < 1971) {
      return "";
    }
    var today = new Date();
    if (d.toDateString() === today.toDateString()) {
      return clock(d);
    }
    return W.dateTime(d, true);
  }

  function sameURL(a, b) {
    var norm = function (u) { return String(u || "").toLowerCase().replace(/\/+$/, ""); };
    return norm(a) === norm(b);
  }

  function loggedOut() {
    W.loggedOut(errorBox);
  }

  // getJSON fetches url; it resolves with the body, or rejects with
  // {status, message}.
  function getJSON(url) {
    return W.api("GET", url).then(function (r) {
      if (!r.ok || r.body === null) {
        throw { status: r.status, message: (r.body && r.body.error) || "HTTP " + r.status };
      }
      return r.body;
    }, function () {
      throw { status: 0, message: "the gateway cannot be reached" };
    });
  }

  // putRoutes saves routes as edited from version; it resolves with
  // {status, body} whatever the status.
  function putRoutes(version, routes) {
    return W.api("PUT", routesURL, { version: version, routes: routes }).then(function (r) {
      return { status: r.status, body: r.body || {} };
    }, function () {
      return { status: 0, body: { error: "the gateway cannot be reached" } };
    });
  }

  // ---- Health --------------------------------------------------------------

  // health is a backend's state from its status: healthy, ejected (by
  // passive checks), down (failing active checks), or unknown when the
  // running reverse proxy does not have it.
  function health(st) {
    if (!st) {
      return { state: "unknown", label: "not running", detail: "The running reverse proxy does not have this backend." };
    }
    if (st.ejected) {
      return { state: "ejected", label: "ejected", detail: "Ejected after failed requests" + (when(st.ejected_until) ? " until " + when(st.ejected_until) : "") + "." };
    }
    if (!st.healthy) {
      return { state: "down", label: "down", detail: "Failing its health checks" + (st.last_check_error ? ": " + st.last_check_error : ".") };
    }
    return { state: "healthy", label: "healthy", detail: st.health_check ? "Passing its health checks." : "No active health checks; up unless requests fail." };
  }

  function statusOf(name) {
    var rs = running && running.routes ? running.routes : [];
    for (var i = 0; i < rs.length; i++) {
      if (rs[i].name === name) {
        return rs[i];
      }
    }
    return null;
  }

  // backendStatus finds a configured backend in the route's status: by
  // URL, or by position when the URLs are written differently.
  function backendStatus(rs, b, j, count) {
    var bs = rs && rs.backends ? rs.backends : [];
    for (var i = 0; i < bs.length; i++) {
      if (sameURL(bs[i].url, b.url)) {
        return bs[i];
      }
    }
    return bs.length === count ? bs[j] : null;
  }

  // ---- The route cards -------------------------------------------------------

  function describeMap(m, sep) {
    return Object.keys(m || {}).sort().map(function (k) { return k + sep + m[k]; }).join(", ");
  }

  function matchTerms(r) {
    var terms = [
      ["Hosts", r.hosts && r.hosts.length ? r.hosts.join(", ") : "any host"],
      ["Path prefix", (r.path_prefix || "/") + (r.strip_prefix ? " (stripped before forwarding)" : "")]
    ];
    if (r.headers && Object.keys(r.headers).length) {
      terms.push(["Headers", describeMap(r.headers, ": ")]);
    }
    if (r.cookies && Object.keys(r.cookies).length) {
      terms.push(["Cookies", describeMap(r.cookies, "=")]);
    }
    terms.push(["Priority", String(r.priority || 0)]);
    terms.push(["Balance", (r.balance || "round_robin") + (r.balance === "hash" ? " on " + (r.hash_on || "client") : "")]);
    terms.push(["Health checks", r.health && r.health.path ? r.health.path + " every " + (r.health.interval || "10s") : "off"]);
    return terms;
  }

  function actionButton(text, key, label) {
    var b = el("button", text, "secondary small");
    b.type = "button";
    b.setAttribute("data-key", key);
    if (label) {
      b.setAttribute("aria-label", label);
    }
    return b;
  }

  function card(r, index) {
    var live = { backends: [] };
    var sec = el("section", null, "panel route");
    sec.id = "route-" + index;
    var head = el("div", null, "route-head");
    var h = el("h2", r.name);
    h.id = "route-" + index + "-title";
    sec.setAttribute("aria-labelledby", h.id);
    head.appendChild(h);
    live.state = el("span", "", "route-state");
    head.appendChild(live.state);
    if (canEdit) {
      var actions = el("span", null, "route-actions");
      var edit = actionButton("Edit", "edit:" + r.name, "Edit route " + r.name);
      edit.addEventListener("click", function () { openForm(index); });
      var del = actionButton("Delete", "delete:" + r.name, "Delete route " + r.name);
      actions.appendChild(edit);
      actions.appendChild(del);
      head.appendChild(actions);
      sec.appendChild(head);
      sec.appendChild(confirmBox(r, index, del));
    } else {
      sec.appendChild(head);
    }

    var dl = el("dl", null, "route-match");
    matchTerms(r).forEach(function (t) {
      var d = el("div");
      d.appendChild(el("dt", t[0]));
      d.appendChild(el("dd", t[1]));
      dl.appendChild(d);
    });
    sec.appendChild(dl);

    var counters = el("p", null, "route-live muted");
    live.counters = counters;
    sec.appendChild(counters);
    live.lastError = el("p", "", "route-error");
    live.lastError.hidden = true;
    sec.appendChild(live.lastError);

    var wrap = el("div", null, "table-scroll");
    var table = el("table", null, "backends-table");
    var cap = el("caption", "Backends of " + r.name, "sr-only");
    table.appendChild(cap);
    var thead = el("thead");
    var hr = el("tr");
    var columns = [["Backend", "c-url"], ["Health", "c-health"], ["In flight", "c-num num"], ["Requests", "c-num num"],
      ["Failures", "c-num num"], ["Last error", "c-error"], ["Last check", "c-check"]];
    columns.forEach(function (c) {
      var th = el("th", c[0], c[1]);
      th.scope = "col";
      hr.appendChild(th);
    });
    thead.appendChild(hr);
    table.appendChild(thead);
    var tbody = el("tbody");
    (r.backends || []).forEach(function (b) {
      var tr = el("tr");
      var url = el("td", b.url, "url");
      if (b.weight || b.max_conns) {
        url.appendChild(el("span", (b.weight ? " weight " + b.weight : "") + (b.max_conns ? " max " + b.max_conns + " conns" : ""), "muted"));
      }
      tr.appendChild(url);
      var cells = { health: el("span", "", "health"), healthCell: el("td"), inFlight: el("td", "", "num"),
        requests: el("td", "", "num"), failures: el("td", "", "num"), error: el("td", "", "wrap"), check: el("td", "", "wrap") };
      cells.healthCell.appendChild(cells.health);
      // data-label names each cell where a phone shows the rows as cards.
      url.setAttribute("data-label", columns[0][0]);
      [cells.healthCell, cells.inFlight, cells.requests, cells.failures, cells.error, cells.check].forEach(function (c, i) {
        c.setAttribute("data-label", columns[i + 1][0]);
        tr.appendChild(c);
      });
      tbody.appendChild(tr);
      live.backends.push({ cfg: b, cells: cells });
    });
    table.appendChild(tbody);
    wrap.appendChild(table);
    sec.appendChild(wrap);
    cards[r.name] = live;
    return sec;
  }

  // confirmBox is the in-page confirmation of a delete: a second button,
  // never a dialog.
  function confirmBox(r, index, del) {
    var box = el("div", null, "confirm");
    box.hidden = true;
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", "Confirm deleting route " + r.name);
    box.appendChild(el("p", "Delete route “" + r.name + "”? It is removed from the config file and stops serving at once."));
    var yes = actionButton("Delete route", "confirm:" + r.name);
    yes.className = "danger small";
    var no = actionButton("Keep it", "keep:" + r.name);
    box.appendChild(yes);
    box.appendChild(no);
    del.addEventListener("click", function () {
      box.hidden = false;
      del.setAttribute("aria-expanded", "true");
      yes.focus();
    });
    no.addEventListener("click", function () {
      box.hidden = true;
      del.setAttribute("aria-expanded", "false");
      del.focus();
    });
    yes.addEventListener("click", function () {
      yes.disabled = true;
      no.disabled = true;
      var routes = doc.routes.filter(function (_, i) { return i !== index; });
      putRoutes(doc.version, routes).then(function (res) {
        yes.disabled = false;
        no.disabled = false;
        if (res.status === 200) {
          show(errorBox, "");
          show(savedBox, "Route “" + r.name + "” deleted.");
          refresh(true, function () { addButton.focus(); });
          return;
        }
        if (res.status === 401) {
          loggedOut();
          return;
        }
        show(errorBox, "Deleting route “" + r.name + "” failed: " + problemText(res.body));
      });
    });
    return box;
  }

  function problemText(body) {
    var msg = (body && body.error) || "unknown error";
    if (body && body.problems && body.problems.length) {
      msg += ": " + body.problems.map(function (p) { return (p.path ? p.path + ": " : "") + p.message; }).join("; ");
    }
    return msg;
  }

  // build replaces the cards with those of doc's routes, keeping the focus
  // on the same control when it is still there.
  function build() {
    var active = document.activeElement;
    var key = active && list.contains(active) ? active.getAttribute("data-key") : null;
    cards = {};
    var frag = document.createDocumentFragment();
    if (!doc.routes.length) {
      frag.appendChild(el("p", "No routes yet." + (canEdit ? " Add one with the button above." : ""), "panel muted"));
    }
    doc.routes.forEach(function (r, i) { frag.appendChild(card(r, i)); });
    clear(list);
    list.appendChild(frag);
    if (key) {
      var again = list.querySelector('[data-key="' + CSS.escape(key) + '"]');
      if (again) {
        again.focus();
      }
    }
  }

  // paint writes the live status into the cards.
  function paint() {
    var up = 0, total = 0;
    doc.routes.forEach(function (r) {
      var live = cards[r.name];
      if (!live) {
        return;
      }
      var rs = statusOf(r.name);
      var healthy = 0;
      live.backends.forEach(function (b, j) {
        var st = backendStatus(rs, b.cfg, j, live.backends.length);
        var h = health(st);
        total++;
        if (h.state === "healthy") {
          healthy++;
          up++;
        }
        setText(b.cells.health, h.label);
        setClass(b.cells.health, "health health-" + h.state);
        if (b.cells.health.title !== h.detail) {
          b.cells.health.title = h.detail;
        }
        setText(b.cells.inFlight, st ? num(st.in_flight) + (st.max_conns ? " / " + num(st.max_conns) : "") : "–");
        setText(b.cells.requests, st ? num(st.requests) : "–");
        setText(b.cells.failures, st ? num(st.failures) + (st.consecutive_failures ? " (" + st.consecutive_failures + " in a row)" : "") : "–");
        setText(b.cells.error, st && st.last_error ? st.last_error + " (" + when(st.last_error_at) + ")" : "none");
        var check = "no active checks";
        if (st && st.health_check) {
          check = when(st.last_check) ? when(st.last_check) + " " + (st.last_check_ok ? "ok" : "failed" + (st.last_check_error ? ": " + st.last_check_error : "")) : "not yet";
        } else if (!st) {
          check = "–";
        }
        setText(b.cells.check, check);
      });
      var n = live.backends.length;
      var state = !rs ? "unknown" : healthy === n ? "healthy" : healthy === 0 ? "down" : "degraded";
      var label = !rs ? "not running" : healthy === n ? (n === 1 ? "healthy" : "all " + n + " backends healthy") :
        healthy + " of " + n + " healthy";
      setText(live.state, label);
      setClass(live.state, "route-state health-" + state);
      setText(live.counters, rs ? plural(Number(rs.requests || 0), "request", "requests") + " since the last reload · " +
        num(rs.in_flight) + " in flight · " + plural(Number(rs.errors || 0), "error", "errors") : "Not served by the running gateway.");
      var err = rs && rs.last_error ? "Last error: " + rs.last_error + " (" + when(rs.last_error_at) + ")" : "";
      setText(live.lastError, err);
      live.lastError.hidden = !err;
    });
    setText(summary, plural(doc.routes.length, "route", "routes") + (total ? ", " + up + " of " + plural(total, "backend", "backends") + " healthy" : "") +
      (doc.listeners && doc.listeners.length ? " · listener " + doc.listeners.join(", ") : "") + ".");
    noticeText();
  }

  // noticeText explains a reverse proxy that is not running: listeners
  // start only when the gateway starts.
  function noticeText() {
    var text = "";
    if (running && !running.enabled) {
      if (doc.listeners && doc.listeners.length) {
        text = "The reverse proxy is not running: the config file names the listener " + doc.listeners.join(", ") +
          ", but listeners start only when the gateway starts. Routes saved here are kept in the config file and serve requests after a restart.";
      } else {
        text = "The reverse proxy is off: the config file names no reverse listener. Set reverse.listen (or reverse.tls.listen) in the config file " +
          "before adding routes; the listener starts only after a restart with reverse.listen set.";
      }
    }
    if (notice.textContent !== text) {
      show(notice, text);
    }
  }

  // refresh reads the routes and the status; the cards are rebuilt only
  // when the routes changed (or when force is set), else updated in place.
  // after, if given, runs once the cards are rebuilt (to move the focus).
  function refresh(force, after) {
    window.clearTimeout(timer);
    if (loading) {
      timer = window.setTimeout(function () { refresh(force, after); }, 200);
      return;
    }
    loading = true;
    Promise.all([getJSON(routesURL), getJSON(statusURL)]).then(function (res) {
      var changed = force || !doc || doc.version !== res[0].version;
      doc = res[0];
      doc.routes = doc.routes || [];
      running = res[1].reverse || { enabled: false, routes: [] };
      if (changed) {
        build();
      }
      paint();
      if (changed && after) {
        after();
      }
      if (refreshFailed) {
        refreshFailed = false;
        show(errorBox, "");
      }
      if (addButton && !editing) {
        addButton.disabled = false;
      }
      var now = new Date();
      clear(updated);
      updated.appendChild(document.createTextNode("Updated at "));
      var t = el("time", clock(now));
      t.setAttribute("datetime", now.toISOString());
      updated.appendChild(t);
      updated.appendChild(document.createTextNode("."));
    }, function (e) {
      if (e.status === 401) {
        loggedOut();
        return;
      }
      refreshFailed = true;
      show(errorBox, "Refreshing failed: " + e.message + (doc ? ". The figures below are from the last update." : "."));
    }).then(function () {
      loading = false;
      if (!document.hidden) {
        timer = window.setTimeout(function () { refresh(false); }, refreshMS);
      }
    });
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) {
      refresh(false);
    } else {
      window.clearTimeout(timer);
    }
  });

  // ---- The form ----------------------------------------------------------

  if (canEdit && form) {
    var f = {
      title: $("form-title"), error: $("form-error"), name: $("r-name"), hosts: $("r-hosts"), prefix: $("r-prefix"),
      strip: $("r-strip"), priority: $("r-priority"), headers: $("r-headers"), cookies: $("r-cookies"),
      balance: $("r-balance"), hashOn: $("r-hash-on"), healthPath: $("r-health-path"),
      healthInterval: $("r-health-interval"), rows: $("backend-rows"), addBackend: $("add-backend"),
      cancel: $("cancel-route"), save: $("save-route"), kept: $("kept")
    };
    // Which input a problem's path (below the route) belongs to.
    var fieldOf = {
      "name": f.name, "hosts": f.hosts, "path_prefix": f.prefix, "strip_prefix": f.strip, "priority": f.priority,
      "headers": f.headers, "cookies": f.cookies, "balance": f.balance, "hash_on": f.hashOn,
      "health.path": f.healthPath, "health.interval": f.healthInterval, "health": f.healthPath
    };
    // The keys the form shows; the others are kept as they are.
    var shown = ["name", "hosts", "path_prefix", "strip_prefix", "priority", "headers", "cookies", "balance", "hash_on", "backends", "health"];
    var hashWrap = f.hashOn.parentNode;
    f.priority.setAttribute("data-path", "priority");
    var opener = null;

    // backendFields are the inputs of a backend row: key, label, type,
    // placeholder.
    var backendFields = [
      ["url", "URL", "url", "http://10.0.0.5:8080"],
      ["weight", "Weight", "number", "1"],
      ["max_conns", "Max connections", "number", "no cap"]
    ];

    var backendRow = function (b) {
      var li = el("li", null, "backend-row");
      backendFields.forEach(function (fd) {
        var wrap = el("div", null, "backend-" + fd[0]);
        var label = el("label");
        label.appendChild(el("span", "", "sr-only row-number"));
        label.appendChild(document.createTextNode(fd[1]));
        var input = el("input");
        input.type = fd[2];
        input.placeholder = fd[3];
        input.setAttribute("data-name", fd[0]);
        input.autocapitalize = "none";
        input.spellcheck = false;
        if (fd[2] === "number") {
          input.step = "1";
          input.min = "0";
          input.inputMode = "numeric";
        }
        var v = b ? b[fd[0]] : "";
        input.value = v ? String(v) : "";
        var err = el("p", "", "field-error");
        err.hidden = true;
        wrap.appendChild(label);
        wrap.appendChild(input);
        wrap.appendChild(err);
        li.appendChild(wrap);
      });
      var rowErr = el("p", "", "field-error row-error");
      rowErr.hidden = true;
      var remove = el("button", "Remove", "secondary small");
      remove.type = "button";
      remove.addEventListener("click", function () {
        var next = li.nextElementSibling || li.previousElementSibling;
        li.remove();
        numberRows();
        if (next) {
          next.querySelector("input").focus();
        } else {
          f.addBackend.focus();
        }
      });
      li.appendChild(remove);
      li.appendChild(rowErr);
      return li;
    };

    // numberRows gives each backend row its labels, ids and error paths
    // by position.
    var numberRows = function () {
      Array.prototype.forEach.call(f.rows.children, function (li, j) {
        li.querySelectorAll("input").forEach(function (input) {
          var name = input.getAttribute("data-name");
          var id = "b-" + j + "-" + name;
          var label = input.parentNode.querySelector("label");
          var err = input.parentNode.querySelector(".field-error");
          input.id = id;
          label.htmlFor = id;
          label.querySelector(".row-number").textContent = "Backend " + (j + 1) + " ";
          err.id = id + "-err";
          err.setAttribute("data-path", "backends[" + j + "]." + name);
          input.setAttribute("aria-describedby", err.id);
          input.setAttribute("data-path", "backends[" + j + "]." + name);
        });
        var rowErr = li.querySelector(".row-error");
        rowErr.setAttribute("data-path", "backends[" + j + "]");
        var remove = li.querySelector("button");
        remove.setAttribute("aria-label", "Remove backend " + (j + 1));
        remove.disabled = f.rows.children.length === 1;
      });
    };

    var lines = function (m, sep) {
      return Object.keys(m || {}).sort().map(function (k) { return k + sep + m[k]; }).join("\n");
    };

    var clearProblems = function () {
      show(f.error, "");
      form.querySelectorAll(".field-error").forEach(function (p) { show(p, ""); });
      form.querySelectorAll("[aria-invalid]").forEach(function (i) { i.removeAttribute("aria-invalid"); });
    };

    openForm = function (index) {
      editing = { index: index, base: copy(doc) };
      var r = index >= 0 ? editing.base.routes[index] : { name: "", backends: [{ url: "" }] };
      opener = document.activeElement;
      clearProblems();
      show(savedBox, "");
      setText(f.title, index >= 0 ? "Edit route “" + r.name + "”" : "Add a route");
      f.name.value = r.name || "";
      f.hosts.value = (r.hosts || []).join(", ");
      f.prefix.value = r.path_prefix || "";
      f.strip.checked = !!r.strip_prefix;
      f.priority.value = r.priority ? String(r.priority) : "";
      f.headers.value = lines(r.headers, ": ");
      f.cookies.value = lines(r.cookies, "=");
      f.balance.value = r.balance || "round_robin";
      f.hashOn.value = r.hash_on || "";
      hashWrap.hidden = f.balance.value !== "hash" && !f.hashOn.value;
      f.healthPath.value = r.health && r.health.path ? r.health.path : "";
      f.healthInterval.value = r.health && r.health.interval ? r.health.interval : "";
      clear(f.rows);
      (r.backends && r.backends.length ? r.backends : [{ url: "" }]).forEach(function (b) { f.rows.appendChild(backendRow(b)); });
      numberRows();
      var others = Object.keys(r).filter(function (k) { return shown.indexOf(k) < 0; });
      show(f.kept, others.length ? "Also kept as they are in the config file: " + others.join(", ") + "." : "");
      form.hidden = false;
      if (addButton) {
        addButton.disabled = true;
      }
      form.scrollIntoView({ block: "start" });
      f.name.focus();
    };

    var closeForm = function () {
      editing = null;
      form.hidden = true;
      clearProblems();
      if (addButton) {
        addButton.disabled = false;
      }
    };

    // parseMatches reads "Name: value" or "name=value" lines into a map,
    // or returns the text of the first bad line.
    var parseMatches = function (text, sep, what) {
      var m = {}, n = 0, bad = "";
      text.split("\n").forEach(function (line, i) {
        line = line.trim();
        if (!line || bad) {
          return;
        }
        var at = line.indexOf(sep);
        if (at <= 0) {
          bad = "Line " + (i + 1) + ": “" + line + "” is not " + what + ".";
          return;
        }
        m[line.slice(0, at).trim()] = line.slice(at + 1).trim();
        n++;
      });
      return { map: n ? m : undefined, bad: bad };
    };

    var wholeNumber = function (input, what, local) {
      var v = input.value.trim();
      if (input.validity.badInput || (v !== "" && !/^-?\d+$/.test(v))) {
        local.push({ path: input.getAttribute("data-path") || what, message: "Not a whole number." });
        return { value: 0 };
      }
      return { value: v === "" ? 0 : parseInt(v, 10) };
    };

    // routeFromForm is the route the form describes, over the original
    // route so that the settings the form does not show are kept. Problems
    // found here (a line that is no match, a weight that is no number)
    // go to local, with the paths the API would use.
    var routeFromForm = function (orig, local) {
      var r = copy(orig || {});
      var set = function (k, v) {
        if (v === undefined || v === "" || v === false || v === 0 || (Array.isArray(v) && !v.length)) {
          delete r[k];
        } else {
          r[k] = v;
        }
      };
      r.name = f.name.value.trim();
      set("hosts", f.hosts.value.split(/[\s,]+/).filter(Boolean));
      set("path_prefix", f.prefix.value.trim());
      set("strip_prefix", f.strip.checked);
      set("priority", wholeNumber(f.priority, "priority", local).value);
      var h = parseMatches(f.headers.value, ":", "“Name: value”");
      if (h.bad) {
        local.push({ path: "headers", message: h.bad });
      }
      set("headers", h.map);
      var c = parseMatches(f.cookies.value, "=", "“name=value”");
      if (c.bad) {
        local.push({ path: "cookies", message: c.bad });
      }
      set("cookies", c.map);
      set("balance", f.balance.value === "round_robin" && !(orig && orig.balance) ? "" : f.balance.value);
      set("hash_on", f.hashOn.value.trim());
      var hp = f.healthPath.value.trim(), hi = f.healthInterval.value.trim();
      if (!hp && !hi) {
        delete r.health;
      } else {
        var health = copy((orig && orig.health) || {});
        health.path = hp;
        if (hi) {
          health.interval = hi;
        } else {
          delete health.interval;
        }
        r.health = health;
      }
      r.backends = [];
      Array.prototype.forEach.call(f.rows.children, function (li) {
        var b = {};
        li.querySelectorAll("input").forEach(function (input) {
          var name = input.getAttribute("data-name");
          if (name === "url") {
            b.url = input.value.trim();
          } else {
            var n = wholeNumber(input, name, local).value;
            if (n) {
              b[name] = n;
            }
          }
        });
        if (b.url || b.weight || b.max_conns || f.rows.children.length === 1) {
          r.backends.push(b);
        }
      });
      return r;
    };

    // errorPlace finds where a problem of the route at index goes: the
    // error line of its field (the closest enclosing field for deeper
    // paths), or null for the form's own error line.
    var errorPlace = function (rest) {
      var path = rest;
      while (path) {
        var p = form.querySelector('.field-error[data-path="' + CSS.escape(path) + '"]');
        if (p) {
          return p;
        }
        var cut = Math.max(path.lastIndexOf("."), path.lastIndexOf("["));
        path = cut > 0 ? path.slice(0, cut) : "";
      }
      return null;
    };

    var inputFor = function (path) {
      while (path) {
        if (fieldOf[path]) {
          return fieldOf[path];
        }
        var input = form.querySelector('input[data-path="' + CSS.escape(path) + '"]');
        if (input) {
          return input;
        }
        var cut = Math.max(path.lastIndexOf("."), path.lastIndexOf("["));
        path = cut > 0 ? path.slice(0, cut) : "";
      }
      return null;
    };

    // showProblems puts each problem next to its field; problems of other
    // routes or of the file go to the top of the form.
    var showProblems = function (problems, index) {
      var prefix = "routes[" + index + "]";
      var general = [];
      var first = null;
      problems.forEach(function (p) {
        var path = p.path || "";
        var rest = null;
        if (path === prefix) {
          rest = "";
        } else if (path.indexOf(prefix + ".") === 0) {
          rest = path.slice(prefix.length + 1);
        }
        if (rest === null) {
          general.push((path ? path + ": " : "") + p.message);
          return;
        }
        var place = errorPlace(rest) || $("r-other-err");
        var text = (place.getAttribute("data-path") === rest ? "" : (rest ? rest + ": " : "")) + p.message;
        show(place, place.textContent ? place.textContent + " " + text : text);
        var input = inputFor(rest);
        if (input) {
          input.setAttribute("aria-invalid", "true");
          first = first || input;
        }
      });
      var head = "Nothing was saved: " + plural(problems.length, "problem", "problems") + " to fix" +
        (general.length ? ": " + general.join("; ") : ", marked below.");
      show(f.error, head);
      (first || f.error).focus();
    };

    f.error.tabIndex = -1;

    f.balance.addEventListener("change", function () {
      hashWrap.hidden = f.balance.value !== "hash" && !f.hashOn.value;
    });

    f.addBackend.addEventListener("click", function () {
      var li = backendRow(null);
      f.rows.appendChild(li);
      numberRows();
      li.querySelector("input").focus();
    });

    f.cancel.addEventListener("click", function () {
      var back = opener;
      closeForm();
      if (back && document.body.contains(back)) {
        back.focus();
      } else if (addButton) {
        addButton.focus();
      }
    });

    form.addEventListener("keydown", function (e) {
      if (e.key === "Escape") {
        f.cancel.click();
      }
    });

    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (!editing) {
        return;
      }
      clearProblems();
      var base = editing.base;
      var index = editing.index >= 0 ? editing.index : base.routes.length;
      var local = [];
      var route = routeFromForm(editing.index >= 0 ? base.routes[editing.index] : null, local);
      if (local.length) {
        showProblems(local.map(function (p) { return { path: "routes[" + index + "]." + p.path, message: p.message }; }), index);
        return;
      }
      var routes = base.routes.slice();
      routes[index] = route;
      f.save.disabled = true;
      putRoutes(base.version, routes).then(function (res) {
        f.save.disabled = false;
        if (res.status === 200) {
          closeForm();
          show(errorBox, "");
          show(savedBox, "Route “" + route.name + "” saved" + (running && running.enabled ?
            "; the gateway reloaded its routes." : " to the config file; it serves requests after a restart with a reverse listener."));
          refresh(true, function () {
            var edit = list.querySelector('[data-key="' + CSS.escape("edit:" + route.name) + '"]');
            (edit || addButton).focus();
          });
          return;
        }
        if (res.status === 401) {
          loggedOut();
          return;
        }
        if (res.status === 422 && res.body.problems) {
          showProblems(res.body.problems, index);
          return;
        }
        if (res.status === 409) {
          show(f.error, "Not saved: the routes were changed elsewhere since this form was opened (" + (res.body.error || "conflict") +
            "). The list below now shows them; open the form again and redo the change.");
          refresh(false);
          f.error.focus();
          return;
        }
        show(f.error, "Not saved: " + problemText(res.body));
        f.error.focus();
      });
    });

    if (addButton) {
      addButton.addEventListener("click", function () { openForm(-1); });
    }
  }

  refresh(true);
})();
