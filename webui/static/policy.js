// Policy page: loads the policy (GET /api/v1/policy) and the categories
// the gateway knows (GET /api/v1/categories), edits the rules in the page
// (add, edit, reorder, delete; category and schedule pickers) and the
// default action, and saves the whole document with PUT /api/v1/policy,
// which validates it like `waygate check`: problems come back with paths
// such as "rules[2].action" and are shown next to that field of that rule.
// The "test a URL" form asks GET /api/v1/explain. Every value from the
// policy or the gateway is inserted with textContent (Waygate.el of
// common.js) or as a form value, never as HTML; confirmations are buttons
// in the page, never dialogs.
"use strict";
(function () {
  var W = window.Waygate, $ = W.$, el = W.el, clear = W.clear, button = W.button;
  var main = document.getElementById("main");
  var rulesList = document.getElementById("rules");
  if (!main || !rulesList) {
    return;
  }
  var editable = main.getAttribute("data-editable") === "true";

  var errorBox = $("error");
  var statusBox = $("status");
  var problemsBox = $("problems");
  var problemList = $("problem-list");
  var defaultAction = $("default-action");
  var defaultError = $("default-action-error");
  var loading = $("loading");
  var noRules = $("no-rules");
  var ruleCount = $("rule-count");
  var versionBox = $("version");
  var addButton = $("add-rule");
  var saveButton = $("save");
  var reloadButton = $("reload");
  var dirtyBox = $("dirty");

  var ACTIONS = ["allow", "block", "warn", "monitor"];
  var DAYS = [["mon", "Mon"], ["tue", "Tue"], ["wed", "Wed"], ["thu", "Thu"], ["fri", "Fri"], ["sat", "Sat"], ["sun", "Sun"]];
  var DAY_KEYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
  var COMMAS = /\s*[,\n]+\s*/; // names may hold spaces: split on commas and new lines
  var SPACES = /[\s,]+/;       // addresses and tokens: split on spaces too
  var URL_SEP = /\s+/;         // URL prefixes may hold commas
  // The list fields of a rule: key, label, hint, separator, multi-line.
  var LIST_FIELDS = [
    ["domains", "Domains", "One per line: domains (with subdomains), IP addresses, networks.", SPACES, true],
    ["urls", "URLs", "One per line: host/path prefixes, such as example.com/games.", URL_SEP, true],
    ["users", "Users", "Proxy user names, separated by commas.", COMMAS, false],
    ["groups", "Groups", "Group names, separated by commas.", COMMAS, false],
    ["clients", "Clients", "Addresses or networks, such as 10.1.0.0/16.", SPACES, false],
    ["methods", "Methods", "In capitals, such as GET, POST, CONNECT.", SPACES, false],
    ["ports", "Ports", "Destination ports, such as 80, 443.", SPACES, false]
  ];
  var FIELD_LABELS = { name: "name", action: "action", warn_for: "warn for", categories: "categories", schedule: "schedule" };
  LIST_FIELDS.forEach(function (f) { FIELD_LABELS[f[0]] = f[1].toLowerCase(); });

  var doc = null;     // the policy as loaded; sections the page does not edit go back unchanged
  var known = [];     // category names: the policy's and the engine's, sorted
  var seq = 0;        // for element ids
  var dirty = false;

  function nextId(what) {
    seq++;
    return "p" + seq + "-" + what;
  }

  function showError(text) {
    W.show(errorBox, text);
  }

  function status(text) {
    statusBox.textContent = text || "";
  }

  // Session gone: say so, with a link to log in again.
  function loggedOut() {
    W.loggedOut(errorBox);
  }

  function setDirty(d) {
    dirty = d;
    if (dirtyBox) {
      dirtyBox.hidden = !d;
    }
  }

  // errorText is the error of a JSON error answer r (of Waygate.api), or
  // what failed with the status.
  function errorText(r, what) {
    return (r.body && r.body.error) ? String(r.body.error) : what + " failed (" + r.status + ").";
  }

  // getJSON asks for url; a 2xx answer that is not JSON rejects, like an
  // unreachable gateway.
  function getJSON(url) {
    return W.api("GET", url).then(function (r) {
      if (r.ok && r.body === null) {
        throw new Error(url + ": not JSON");
      }
      return r;
    });
  }

  function list(v) {
    return Array.isArray(v) ? v : [];
  }

  function split(text, sep) {
    return String(text).split(sep).map(function (s) { return s.trim(); }).filter(Boolean);
  }

  // ---- Fields and their errors ------------------------------------------

  // field builds a labelled control with a hint and an error line below
  // it; the control's wgError is the error line.
  function field(label, control, hint, cls) {
    var wrap = el("div", null, "field" + (cls ? " " + cls : ""));
    control.id = control.id || nextId("f");
    var l = el("label", label);
    l.htmlFor = control.id;
    wrap.appendChild(l);
    wrap.appendChild(control);
    var described = [];
    if (hint) {
      var h = el("p", hint, "hint");
      h.id = control.id + "-hint";
      wrap.appendChild(h);
      described.push(h.id);
    }
    var err = el("p", null, "field-error");
    err.id = control.id + "-error";
    err.hidden = true;
    wrap.appendChild(err);
    described.push(err.id);
    control.setAttribute("aria-describedby", described.join(" "));
    control.wgError = err;
    control.disabled = !editable;
    return wrap;
  }

  function input(value, attrs) {
    var i = el("input");
    i.type = "text";
    i.value = value || "";
    i.spellcheck = false;
    i.setAttribute("autocapitalize", "none");
    Object.keys(attrs || {}).forEach(function (k) { i.setAttribute(k, attrs[k]); });
    return i;
  }

  function select(values, current) {
    var s = el("select");
    values.forEach(function (v) {
      var o = el("option", v);
      o.value = v;
      s.appendChild(o);
    });
    if (current && values.indexOf(current) < 0) {
      // A value the page does not know (a newer gateway): keep it.
      var o = el("option", current);
      o.value = current;
      s.appendChild(o);
    }
    s.value = current || values[0];
    return s;
  }

  // setFieldError shows msgs under control (or under a fieldset: its
  // wgError) and marks it invalid; empty msgs clear it.
  function setFieldError(control, msgs) {
    var err = control.wgError;
    if (!err) {
      return;
    }
    err.textContent = msgs.join(" ");
    err.hidden = msgs.length === 0;
    if (/^(INPUT|SELECT|TEXTAREA)$/.test(control.tagName || "")) {
      if (msgs.length) {
        control.setAttribute("aria-invalid", "true");
      } else {
        control.removeAttribute("aria-invalid");
      }
    }
  }

  function clearErrors() {
    Array.prototype.forEach.call(main.querySelectorAll(".field-error"), function (p) {
      p.textContent = "";
      p.hidden = true;
    });
    Array.prototype.forEach.call(main.querySelectorAll("[aria-invalid]"), function (c) {
      c.removeAttribute("aria-invalid");
    });
    Array.prototype.forEach.call(rulesList.querySelectorAll(".rule.has-error"), function (li) {
      li.classList.remove("has-error");
    });
    clear(problemList);
    problemsBox.hidden = true;
  }

  // ---- A rule ------------------------------------------------------------

  // checks builds a fieldset of checkboxes, one per value, with checked
  // those in current; it returns the fieldset, whose wgValues() lists the
  // checked values in the order given.
  function checks(legend, values, current, cls, empty) {
    var fs = el("fieldset", null, "checks " + (cls || ""));
    fs.appendChild(el("legend", legend));
    var box = el("div", null, "check-grid");
    var inputs = [];
    values.forEach(function (v) {
      var value = Array.isArray(v) ? v[0] : v;
      var label = Array.isArray(v) ? v[1] : v;
      var l = el("label", null, "inline");
      var c = el("input");
      c.type = "checkbox";
      c.value = value;
      c.checked = current.indexOf(value) >= 0;
      c.disabled = !editable;
      l.appendChild(c);
      l.appendChild(document.createTextNode(" " + label));
      box.appendChild(l);
      inputs.push(c);
    });
    if (!values.length && empty) {
      box.appendChild(el("p", empty, "muted"));
    }
    fs.appendChild(box);
    var err = el("p", null, "field-error");
    err.hidden = true;
    fs.appendChild(err);
    fs.wgError = err;
    fs.wgValues = function () {
      return inputs.filter(function (c) { return c.checked; }).map(function (c) { return c.value; });
    };
    fs.wgFirst = function () { return inputs[0] || null; };
    return fs;
  }

  // dayKey turns a day as written in the config ("Mon", "monday") into
  // the picker's key; anything else is kept as written.
  function dayKey(d) {
    var k = String(d).trim().toLowerCase().slice(0, 3);
    return DAY_KEYS.indexOf(k) >= 0 ? k : String(d);
  }

  // windowItem builds the editor of one time window.
  function windowItem(w, card) {
    var li = el("li", null, "window");
    var fs = el("fieldset");
    var legend = el("legend", "Time window");
    fs.appendChild(legend);
    var days = list(w.days).map(dayKey);
    var dayValues = DAYS.slice();
    days.forEach(function (d) {
      if (DAY_KEYS.indexOf(d) < 0) {
        dayValues.push([d, d]); // not a day the page knows: kept, for the check to name
      }
    });
    var dayPicker = checks("Days (none: every day)", dayValues, days, "days");
    fs.appendChild(dayPicker);
    var row = el("div", null, "window-times");
    var from = input(w.from, { inputmode: "numeric", placeholder: "09:00", autocomplete: "off" });
    var to = input(w.to, { inputmode: "numeric", placeholder: "17:00", autocomplete: "off" });
    var tz = input(w.time_zone, { list: "tz-list", placeholder: "UTC", autocomplete: "off" });
    from.setAttribute("data-field", "from");
    to.setAttribute("data-field", "to");
    tz.setAttribute("data-field", "time_zone");
    row.appendChild(field("From", from));
    row.appendChild(field("To", to));
    row.appendChild(field("Time zone", tz, null, "tz"));
    fs.appendChild(row);
    fs.appendChild(el("p", "Times are HH:MM, 24-hour; to is exclusive, and a to before from runs past midnight. " +
      "The time zone is an IANA name such as Europe/Berlin; empty means UTC.", "hint"));
    var err = el("p", null, "field-error");
    err.hidden = true;
    fs.appendChild(err);
    fs.wgError = err;
    if (editable) {
      fs.appendChild(button("Remove this window", "small secondary", function () {
        var next = li.nextElementSibling || li.previousElementSibling;
        li.remove();
        renumberWindows(card);
        changed(card);
        (next ? next.querySelector("input") : card.wg.addWindow).focus();
        status("Time window removed (not saved yet).");
      }));
    }
    li.appendChild(fs);
    li.wg = {
      legend: legend, fieldset: fs, days: dayPicker, from: from, to: to, tz: tz,
      value: function () {
        var out = {};
        var d = dayPicker.wgValues();
        if (d.length) {
          out.days = d;
        }
        if (from.value.trim()) {
          out.from = from.value.trim();
        }
        if (to.value.trim()) {
          out.to = to.value.trim();
        }
        if (tz.value.trim()) {
          out.time_zone = tz.value.trim();
        }
        return out;
      }
    };
    return li;
  }

  function renumberWindows(card) {
    var items = card.wg.windows.children;
    for (var i = 0; i < items.length; i++) {
      items[i].wg.legend.textContent = "Time window " + (i + 1);
    }
    card.wg.noWindows.hidden = items.length > 0;
  }

  // ruleCard builds the list item of one rule: a summary line with its
  // buttons, and the editor of its fields (hidden until opened).
  function ruleCard(r) {
    var li = el("li", null, "rule");
    var head = el("div", null, "rule-head");
    var pos = el("span", null, "rule-pos");
    pos.setAttribute("aria-hidden", "true");
    var title = el("div", null, "rule-title");
    var name = el("span", null, "rule-name");
    name.id = nextId("name");
    var action = el("span", null, "badge");
    var summary = el("span", null, "rule-sum muted");
    title.appendChild(name);
    title.appendChild(document.createTextNode(" "));
    title.appendChild(action);
    title.appendChild(el("br"));
    title.appendChild(summary);
    head.appendChild(pos);
    head.appendChild(title);

    var body = el("div", null, "rule-body");
    body.id = nextId("body");
    body.hidden = true;

    var buttons = el("div", null, "rule-buttons");
    var toggle = button(editable ? "Edit" : "Details", "small secondary", function () {
      open(li, body.hidden);
      if (!body.hidden) {
        li.wg.fields.name.focus();
      }
    });
    toggle.setAttribute("aria-expanded", "false");
    toggle.setAttribute("aria-controls", body.id);
    toggle.setAttribute("aria-describedby", name.id);
    buttons.appendChild(toggle);
    var up, down, del;
    if (editable) {
      up = button("↑ Up", "small secondary", function () { move(li, -1, up); });
      down = button("↓ Down", "small secondary", function () { move(li, 1, down); });
      del = button("Delete", "small secondary danger", function () { confirmDelete(li); });
      [up, down, del].forEach(function (b) {
        b.setAttribute("aria-describedby", name.id);
        buttons.appendChild(b);
      });
      up.setAttribute("aria-label", "Move up");
      down.setAttribute("aria-label", "Move down");
    }
    head.appendChild(buttons);
    li.appendChild(head);

    // Rule-level problems (a path naming the rule but no field of it).
    var ruleError = el("p", null, "field-error");
    ruleError.hidden = true;
    body.appendChild(ruleError);

    var fields = {};
    var grid = el("div", null, "rule-grid cols-3");
    fields.name = input(r.name, { autocomplete: "off" });
    grid.appendChild(field("Name", fields.name, null, "name"));
    fields.action = select(ACTIONS, r.action || "block");
    grid.appendChild(field("Action", fields.action));
    fields.warn_for = input(r.warn_for, { placeholder: "1h", autocomplete: "off" });
    grid.appendChild(field("Warn for", fields.warn_for, "With warn: how long a user who goes on is let through."));
    body.appendChild(grid);

    // The category picker: the policy's and the engine's categories, and
    // any the rule names that neither knows (kept, for the check to name).
    var cats = known.slice();
    list(r.categories).forEach(function (c) {
      if (cats.indexOf(c) < 0) {
        cats.push(c);
      }
    });
    fields.categories = checks("Categories (any of them)", cats, list(r.categories), "categories",
      "No categories are defined: add them in the config file or on the Categories page.");
    body.appendChild(fields.categories);

    var lists = el("div", null, "rule-grid cols-2");
    LIST_FIELDS.forEach(function (f) {
      var value = list(r[f[0]]).map(String);
      var c;
      if (f[4]) {
        c = el("textarea");
        c.rows = 2;
        c.spellcheck = false;
        c.setAttribute("autocapitalize", "none");
        c.value = value.join("\n");
      } else {
        c = input(value.join(", "), { autocomplete: "off" });
        if (f[0] === "ports") {
          c.setAttribute("inputmode", "numeric");
        }
      }
      fields[f[0]] = c;
      var hint = f[2];
      if (f[0] === "groups") {
        var groups = list(doc && doc.groups).map(function (g) { return g && g.name; }).filter(Boolean);
        hint += groups.length ? " Defined: " + groups.join(", ") + "." : " None are defined.";
      }
      lists.appendChild(field(f[1], c, hint));
    });
    body.appendChild(lists);

    // The schedule picker.
    var sched = el("fieldset", null, "schedule");
    sched.appendChild(el("legend", "Schedule"));
    var noWindows = el("p", "No time window: the rule applies at all times.", "muted");
    sched.appendChild(noWindows);
    var windows = el("ol", null, "windows");
    sched.appendChild(windows);
    var schedError = el("p", null, "field-error");
    schedError.hidden = true;
    sched.appendChild(schedError);
    sched.wgError = schedError;
    var addWindow = null;
    if (editable) {
      addWindow = button("Add time window", "small secondary", function () {
        var w = windowItem({}, li);
        windows.appendChild(w);
        renumberWindows(li);
        changed(li);
        w.wg.days.wgFirst().focus();
      });
      sched.appendChild(addWindow);
    }
    body.appendChild(sched);
    fields.schedule = sched;
    li.appendChild(body);
    Object.keys(fields).forEach(function (k) {
      fields[k].setAttribute("data-field", k);
    });

    li.wg = {
      orig: r, pos: pos, name: name, action: action, summary: summary, body: body, toggle: toggle,
      up: up, down: down, del: del, buttons: buttons, fields: fields, ruleError: ruleError,
      windows: windows, noWindows: noWindows, addWindow: addWindow
    };
    list(r.schedule).forEach(function (w) {
      windows.appendChild(windowItem(w, li));
    });
    renumberWindows(li);
    li.addEventListener("input", function () { changed(li); });
    li.addEventListener("change", function () { changed(li); });
    updateHead(li);
    return li;
  }

  function open(li, yes) {
    li.wg.body.hidden = !yes;
    li.wg.toggle.setAttribute("aria-expanded", yes ? "true" : "false");
    li.wg.toggle.textContent = yes ? "Close" : (editable ? "Edit" : "Details");
    li.classList.toggle("open", yes);
  }

  // changed marks the policy edited and refreshes the rule's summary.
  function changed(li) {
    if (editable) {
      setDirty(true);
    }
    if (li) {
      updateHead(li);
    }
  }

  function describeWindow(w) {
    var days = list(w.days).join(", ") || "every day";
    var hours = w.from || w.to ? (w.from || "?") + "–" + (w.to || "?") : "all day";
    return days + " " + hours + (w.time_zone ? " " + w.time_zone : " UTC");
  }

  // updateHead writes the rule's summary line from its fields.
  function updateHead(li) {
    var r = ruleValue(li).rule;
    li.wg.name.textContent = r.name || "(unnamed rule)";
    li.wg.name.classList.toggle("muted", !r.name);
    li.wg.action.textContent = r.action;
    li.wg.action.className = "badge act-" + String(r.action).replace(/[^a-z]/g, "");
    var parts = [];
    if (r.categories) {
      parts.push("categories: " + r.categories.join(", "));
    }
    LIST_FIELDS.forEach(function (f) {
      if (r[f[0]]) {
        parts.push(f[1].toLowerCase() + ": " + r[f[0]].join(", "));
      }
    });
    if (r.schedule) {
      parts.push("when: " + r.schedule.map(describeWindow).join("; "));
    }
    li.wg.summary.textContent = parts.length ? parts.join(" · ") : "every request";
  }

  // ruleValue reads a rule from its editor, over the rule as loaded (so
  // that fields the page does not know go back as they were). Ports that
  // are not numbers come back in badPorts, for an error next to the field
  // without a save.
  function ruleValue(li) {
    var f = li.wg.fields;
    var r = Object.assign({}, li.wg.orig);
    ["categories", "schedule", "warn_for"].concat(LIST_FIELDS.map(function (lf) { return lf[0]; })).forEach(function (k) {
      delete r[k];
    });
    r.name = f.name.value.trim();
    r.action = f.action.value;
    var bad = [];
    var cats = f.categories.wgValues();
    if (cats.length) {
      r.categories = cats;
    }
    LIST_FIELDS.forEach(function (lf) {
      var v = split(f[lf[0]].value, lf[3]);
      if (lf[0] === "ports") {
        var ports = [];
        v.forEach(function (p) {
          if (/^\d{1,6}$/.test(p)) {
            ports.push(parseInt(p, 10));
          } else {
            bad.push("“" + p + "” is not a port number (1 to 65535).");
          }
        });
        v = ports;
      }
      if (v.length) {
        r[lf[0]] = v;
      }
    });
    var windows = Array.prototype.map.call(li.wg.windows.children, function (w) { return w.wg.value(); });
    if (windows.length) {
      r.schedule = windows;
    }
    if (f.warn_for.value.trim()) {
      r.warn_for = f.warn_for.value.trim();
    }
    return { rule: r, badPorts: bad };
  }

  function cards() {
    return Array.prototype.slice.call(rulesList.children);
  }

  // renumber updates positions and the move buttons after any change of
  // the list.
  function renumber() {
    var all = cards();
    all.forEach(function (li, i) {
      li.wg.pos.textContent = String(i + 1);
      if (li.wg.up) {
        li.wg.up.disabled = i === 0;
        li.wg.down.disabled = i === all.length - 1;
      }
    });
    noRules.hidden = all.length > 0 || !doc;
    ruleCount.textContent = doc ? "(" + all.length + ")" : "";
  }

  function ruleLabel(li) {
    var n = li.wg.fields.name.value.trim();
    return n ? "“" + n + "”" : "the unnamed rule";
  }

  // move moves a rule up (-1) or down (+1), keeping the focus on the
  // button pressed (or on its twin when it is now disabled).
  function move(li, dir, pressed) {
    var other = dir < 0 ? li.previousElementSibling : li.nextElementSibling;
    if (!other) {
      return;
    }
    if (dir < 0) {
      rulesList.insertBefore(li, other);
    } else {
      rulesList.insertBefore(other, li);
    }
    renumber();
    changed(null);
    var focus = pressed.disabled ? (dir < 0 ? li.wg.down : li.wg.up) : pressed;
    if (focus.disabled) {
      focus = li.wg.toggle;
    }
    focus.focus();
    status("Rule " + ruleLabel(li) + " is now number " + (cards().indexOf(li) + 1) + " of " + cards().length + " (not saved yet).");
  }

  // confirmInline hides trigger and puts a question with two buttons in
  // its place; yes runs onYes, no puts the trigger back.
  function confirmInline(trigger, question, yesText, onYes) {
    var box = el("span", null, "confirm");
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", question);
    box.appendChild(el("span", question, "confirm-q"));
    var yes = button(yesText, "small danger", function () {
      box.remove();
      trigger.hidden = false;
      onYes();
    });
    var no = button("Cancel", "small secondary", function () {
      box.remove();
      trigger.hidden = false;
      trigger.focus();
    });
    box.appendChild(yes);
    box.appendChild(no);
    trigger.hidden = true;
    trigger.after(box);
    no.focus();
  }

  function confirmDelete(li) {
    confirmInline(li.wg.del, "Delete " + ruleLabel(li) + "?", "Delete", function () {
      var next = li.nextElementSibling || li.previousElementSibling;
      var label = ruleLabel(li);
      li.remove();
      renumber();
      changed(null);
      (next ? next.wg.toggle : addButton).focus();
      status("Rule " + label + " deleted (not saved yet).");
    });
  }

  // ---- Loading -----------------------------------------------------------

  // categoryNames reads the names out of GET /api/v1/categories, which
  // answers {"categories": [...]} or {"categories": {"categories": [...]}}
  // with items that are names or objects with a name.
  function categoryNames(body) {
    var c = body && body.categories;
    if (c && !Array.isArray(c) && Array.isArray(c.categories)) {
      c = c.categories;
    }
    return list(c).map(function (x) {
      return typeof x === "string" ? x : (x && typeof x.name === "string" ? x.name : "");
    }).filter(Boolean);
  }

  function render() {
    clear(rulesList);
    list(doc.rules).forEach(function (r) {
      rulesList.appendChild(ruleCard(r));
    });
    var a = doc.default_action || "allow";
    if (!Array.prototype.some.call(defaultAction.options, function (o) { return o.value === a; })) {
      var o = el("option", a);
      o.value = a;
      defaultAction.appendChild(o);
    }
    defaultAction.value = a;
    versionBox.textContent = doc.version ? "Config file version " + String(doc.version).slice(0, 12) + "." : "";
    loading.hidden = true;
    renumber();
    setDirty(false);
    if (addButton) {
      addButton.disabled = false;
      saveButton.disabled = false;
    }
  }

  // load fetches the policy and the known categories and shows them; the
  // category list is optional (the picker then offers the policy's).
  function load() {
    loading.hidden = false;
    var cats = getJSON("/api/v1/categories").then(function (r) {
      return r.ok ? categoryNames(r.body) : [];
    }, function () { return []; });
    return getJSON("/api/v1/policy").then(function (r) {
      if (r.status === 401) {
        loggedOut();
        return;
      }
      if (!r.ok) {
        showError(errorText(r, "Loading the policy"));
        return;
      }
      return Promise.all([r.body, cats]).then(function (both) {
        doc = both[0] || {};
        var names = list(doc.categories).map(function (c) { return c && c.name; }).filter(Boolean);
        both[1].forEach(function (n) {
          if (names.indexOf(n) < 0) {
            names.push(n);
          }
        });
        known = names.sort();
        showError("");
        clearErrors();
        render();
      });
    }).catch(function () {
      showError("The gateway cannot be reached.");
    }).then(function () {
      loading.hidden = true;
    });
  }

  // ---- Saving ------------------------------------------------------------

  // problemTarget finds the control a problem's path names, among the
  // rules as they were sent (sent[i] is rules[i] of the saved document).
  function problemTarget(p, sent) {
    var path = String(p.path || "");
    var msg = String(p.message || "");
    if (path === "filter.default_action") {
      return { control: defaultAction, where: "Default action" };
    }
    var m = /^rules\[(\d+)\](?:\.([a-z_]+)(?:\[(\d+)\])?(?:\.([a-z_]+))?)?/.exec(path);
    if (!m || !sent[+m[1]]) {
      return null;
    }
    var li = sent[+m[1]];
    var where = "Rule " + (cards().indexOf(li) + 1) + " (" + ruleLabel(li) + ")";
    var key = m[2];
    if (key === "schedule" && m[3] !== undefined) {
      var w = li.wg.windows.children[+m[3]];
      if (w) {
        var sub = m[4] || (/^from\b/.test(msg) && !/^from and to/.test(msg) ? "from" : /^to\b/.test(msg) ? "to" :
          /^time_zone\b/.test(msg) ? "time_zone" : /day of the week/.test(msg) ? "days" : "");
        var ctl = { from: w.wg.from, to: w.wg.to, time_zone: w.wg.tz, days: w.wg.days }[sub] || w.wg.fieldset;
        return { card: li, control: ctl, where: where + ", time window " + (+m[3] + 1) };
      }
    }
    if (key && li.wg.fields[key]) {
      return { card: li, control: li.wg.fields[key], where: where + ", " + (FIELD_LABELS[key] || key) };
    }
    return { card: li, control: { wgError: li.wg.ruleError, focusTo: li.wg.fields.name }, where: where };
  }

  // focusable is what a link in the problem list moves the focus to.
  function focusable(ctl) {
    if (ctl && ctl.focusTo) {
      return ctl.focusTo;
    }
    if (ctl && ctl.wgFirst) {
      return ctl.wgFirst() || ctl;
    }
    if (ctl && ctl.tagName === "FIELDSET") {
      return ctl.querySelector("input, select, textarea, button") || ctl;
    }
    return ctl && ctl.focus ? ctl : null;
  }

  // showProblems puts each problem next to its field (opening its rule)
  // and lists them all above, each linking to its field.
  function showProblems(problems, sent, title) {
    var byControl = [];
    problems.forEach(function (p) {
      var t = problemTarget(p, sent);
      var msg = String(p.message || "invalid");
      var item = el("li");
      if (t) {
        if (t.card) {
          open(t.card, true);
          t.card.classList.add("has-error");
        }
        var entry = byControl.filter(function (e) { return e.control === t.control; })[0];
        if (!entry) {
          entry = { control: t.control, msgs: [] };
          byControl.push(entry);
        }
        entry.msgs.push(msg);
        var target = focusable(t.control);
        if (target) {
          if (!target.id) {
            target.id = nextId("t");
          }
          var a = el("a", t.where);
          a.href = "#" + target.id;
          a.addEventListener("click", function (e) {
            e.preventDefault();
            target.focus();
          });
          item.appendChild(a);
        } else {
          item.appendChild(el("strong", t.where));
        }
        item.appendChild(document.createTextNode(": " + msg));
      } else {
        if (p.path) {
          item.appendChild(el("code", p.path));
          item.appendChild(document.createTextNode(": "));
        }
        item.appendChild(document.createTextNode(msg));
      }
      problemList.appendChild(item);
    });
    byControl.forEach(function (e) { setFieldError(e.control, e.msgs); });
    $("problems-title").textContent = title;
    problemsBox.hidden = false;
    problemsBox.focus();
  }

  function save() {
    if (!doc) {
      return;
    }
    clearErrors();
    showError("");
    var sent = cards();
    var local = [];
    var rules = sent.map(function (li, i) {
      var v = ruleValue(li);
      if (v.badPorts.length) {
        local.push({ path: "rules[" + i + "].ports", message: v.badPorts.join(" ") });
      }
      return v.rule;
    });
    if (local.length) {
      showProblems(local, sent, "Not saved: fix the fields marked below");
      status("");
      return;
    }
    // Sections the page does not edit (categories, category_dirs, groups)
    // go back as they were loaded.
    var out = Object.assign({}, doc, {
      version: doc.version || "",
      default_action: defaultAction.value,
      categories: list(doc.categories),
      rules: rules
    });
    saveButton.disabled = true;
    status("Saving…");
    W.api("PUT", "/api/v1/policy", out).then(function (r) {
      var body = r.body;
      if (r.ok) {
        if (body === null) {
          throw new Error("not JSON");
        }
        var v = body.version ? String(body.version).slice(0, 12) : "";
        return load().then(function () {
          status("Saved" + (v ? " as version " + v : "") + "; the gateway applies it now.");
        });
      }
      status("");
      if (r.status === 401) {
        loggedOut();
        return;
      }
      if (r.status === 422) {
        if (body === null) {
          throw new Error("not JSON");
        }
        var probs = list(body.problems);
        if (!probs.length) {
          probs = [{ path: "", message: body.error || "invalid policy" }];
        }
        showProblems(probs, sent, "Not saved: " + probs.length + (probs.length === 1 ? " problem" : " problems") +
          ". Nothing was changed.");
        return;
      }
      if (r.status === 409) {
        showError("Not saved: someone changed the policy since you loaded it (" + errorText(r, "Saving") + "). ");
        errorBox.appendChild(button("Reload the policy", "small", function () { load(); }));
        return;
      }
      if (r.status === 403) {
        showError("Not saved: your account may not change the policy (" + errorText(r, "Saving") + ").");
        return;
      }
      showError("Not saved: " + errorText(r, "Saving"));
    }).catch(function () {
      status("");
      showError("Not saved: the gateway cannot be reached.");
    }).then(function () {
      saveButton.disabled = false;
    });
  }

  // ---- Test a URL ----------------------------------------------------------

  var REASONS = {
    "default": "No rule matched, so the policy's default action applies.",
    "rule": "A rule of the policy matched.",
    "invalid_target": "The target is not a valid host or address.",
    "warn_accepted": "The user was warned and chose to continue.",
    "gateway": "The gateway answered this request itself (the setup check); the policy was not asked."
  };

  // localTime writes the time iso in the browser's zone and in UTC.
  function localTime(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) {
      return String(iso);
    }
    return W.dateTime(d, false) + " (" + d.toISOString().slice(0, 16).replace("T", " ") + " UTC)";
  }

  function why(d) {
    if (d.reason === "rule" && d.rule) {
      var s = "Rule “" + d.rule + "” matched";
      if (d.category) {
        s += " through the category “" + d.category + "”";
      }
      if (d.entry) {
        s += ", list entry “" + d.entry + "”" + (d.source === "inline" ? " written in the policy" : d.source ? " from " + d.source : "");
      }
      return s + ".";
    }
    return REASONS[d.reason] || "";
  }

  function showExplanation(body) {
    var box = $("x-result");
    clear(box);
    var d = body.decision || {};
    var r = body.request || {};
    var verdict = el("p", null, "verdict");
    var badge = el("span", d.action || "?", "badge big act-" + String(d.action || "").replace(/[^a-z]/g, ""));
    badge.id = "x-action";
    verdict.appendChild(badge);
    verdict.appendChild(document.createTextNode(" "));
    verdict.appendChild(el("span", why(d), "why"));
    box.appendChild(verdict);
    var target = (r.method || "") + " " + (r.host || "") + (r.port ? ":" + r.port : "") + (r.path || "");
    var rows = [
      ["URL", body.url], ["Request", target], ["Time", r.time ? localTime(r.time) : ""],
      ["User", r.user || "not given"], ["Client", r.client || "not given"],
      ["Action", d.action], ["Reason", d.reason], ["Rule", d.rule],
      ["Categories", list(d.categories).join(", ")], ["Matching category", d.category],
      ["List entry", d.entry], ["List", d.source]
    ];
    if (d.warn_for) {
      rows.push(["Let through for", d.warn_for]);
    }
    rows.push(["Host", d.host], ["Policy version", d.policy_version]);
    var dl = el("dl");
    rows.forEach(function (p) {
      var dd = el("dd", p[1] === undefined || p[1] === null || p[1] === "" ? "—" : String(p[1]));
      dd.setAttribute("data-key", p[0]);
      dl.appendChild(el("dt", p[0]));
      dl.appendChild(dd);
    });
    box.appendChild(dl);
    if (dirty) {
      box.appendChild(el("p", "This is the saved policy's answer: your unsaved changes are not in it.", "muted"));
    }
    box.hidden = false;
  }

  function explain() {
    var form = $("explain");
    var xError = $("x-error");
    var url = $("x-url").value.trim();
    xError.hidden = true;
    if (!url) {
      xError.textContent = "Enter the URL to test.";
      xError.hidden = false;
      $("x-url").focus();
      return;
    }
    var p = new URLSearchParams();
    p.set("url", url);
    ["user", "client"].forEach(function (k) {
      var v = form.elements[k].value.trim();
      if (v) {
        p.set(k, v);
      }
    });
    var page = new URLSearchParams(p);
    var at = $("x-at").value;
    if (at) {
      page.set("at", at);
      var t = new Date(at); // datetime-local: the browser's time zone
      p.set("at", isNaN(t.getTime()) ? at : t.toISOString());
    }
    // The test is a link: the page's URL carries it.
    window.history.replaceState(null, "", "/policy?" + page.toString());
    $("x-submit").disabled = true;
    getJSON("/api/v1/explain?" + p.toString()).then(function (r) {
      if (r.status === 401) {
        loggedOut();
        return;
      }
      if (!r.ok) {
        W.show(xError, errorText(r, "The test"));
        $("x-result").hidden = true;
        return;
      }
      showExplanation(r.body);
    }).catch(function () {
      xError.textContent = "The gateway cannot be reached.";
      xError.hidden = false;
    }).then(function () {
      $("x-submit").disabled = false;
    });
  }

  // ---- Wiring ------------------------------------------------------------

  function timeZones() {
    var dl = $("tz-list");
    var zones = ["UTC"];
    if (typeof Intl === "object" && typeof Intl.supportedValuesOf === "function") {
      try {
        zones = zones.concat(Intl.supportedValuesOf("timeZone"));
      } catch (e) {
        // An older browser: the field still takes any name.
      }
    }
    zones.forEach(function (z) {
      var o = el("option");
      o.value = z;
      dl.appendChild(o);
    });
  }

  defaultAction.addEventListener("change", function () { changed(null); });
  if (addButton) {
    addButton.addEventListener("click", function () {
      var li = ruleCard({ action: "block" });
      rulesList.appendChild(li);
      renumber();
      open(li, true);
      changed(null);
      li.wg.fields.name.focus();
      status("New rule added at the end (not saved yet).");
    });
    saveButton.addEventListener("click", save);
    reloadButton.addEventListener("click", function () {
      if (!dirty) {
        load().then(function () { status("Policy reloaded."); });
        return;
      }
      confirmInline(reloadButton, "Discard your unsaved changes?", "Discard and reload", function () {
        load().then(function () {
          status("Policy reloaded; your changes were discarded.");
          reloadButton.focus();
        });
      });
    });
  }
  $("explain").addEventListener("submit", function (e) {
    e.preventDefault();
    explain();
  });

  timeZones();
  load();
  if ($("x-url").value) {
    explain();
  }
})();
