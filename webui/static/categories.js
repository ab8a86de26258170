// Categories page: every category of the running policy from
// /api/v1/categories (sources, entry counts, last refresh of remote lists,
// malformed lines), and, for admins, editors of the inline domains and
// URLs of the categories defined in the config, saved by sending the whole
// policy document of /api/v1/policy back with its version (PUT). Every
// value is inserted with textContent or setAttribute (Waygate.el of
// common.js), never as HTML; no dialogs: confirmations are a second,
// in-page button.
"use strict";
(function () {
  var W = window.Waygate, $ = W.$, el = W.el, clear = W.clear, fmtInt = W.fmtInt, plural = W.plural;
  var main = document.getElementById("main");
  var list = document.getElementById("cats");
  var errorBox = document.getElementById("error");
  var notice = document.getElementById("notice");
  var find = document.getElementById("find");
  var shown = document.getElementById("shown");
  var newForm = document.getElementById("new-cat");
  if (!main || !list) {
    return;
  }
  var editable = main.getAttribute("data-editable") === "true";

  // The last answers: the categories listing and the policy document
  // (null when it cannot be read: then nothing is editable).
  var cats = null;
  var doc = null;
  var busy = false;

  function showError(text) {
    W.show(errorBox, text);
  }

  function showNotice(text) {
    W.show(notice, text);
  }

  function loggedOut() {
    W.loggedOut(errorBox);
  }

  // "24h0m0s" -> "24h", "1h30m0s" -> "1h30m".
  function duration(s) {
    return String(s || "").replace(/([hm])0s$/, "$1").replace(/h0m$/, "h");
  }

  // lines splits a textarea into entries: trimmed, blank lines dropped.
  function lines(text) {
    return String(text).split(/\r?\n/).map(function (l) { return l.trim(); })
      .filter(function (l) { return l !== ""; });
  }

  function errorText(r, what) {
    return (r.body && r.body.error) ? what + ": " + r.body.error : what + " failed (" + r.status + ").";
  }

  // ---- Loading -----------------------------------------------------------

  // load fetches the listing and the policy and draws the page; it
  // resolves to true when both could be read.
  function load() {
    return Promise.all([W.api("GET", "/api/v1/categories"), W.api("GET", "/api/v1/policy")]).then(function (rs) {
      var c = rs[0], p = rs[1];
      if (c.status === 401 || p.status === 401) {
        loggedOut();
        return false;
      }
      if (c.status !== 200 || !c.body || !c.body.categories) {
        showError(errorText(c, "Listing the categories"));
        return false;
      }
      cats = c.body.categories;
      doc = (p.status === 200 && p.body) ? p.body : null;
      showError(doc || !editable ? "" : errorText(p, "Reading the policy") + " The lists cannot be edited.");
      // A document without a version is the embedded defaults: there is
      // no config file to save to.
      if (editable && doc && !doc.version) {
        editable = false;
        if (newForm) {
          newForm.closest("section").hidden = true;
        }
        showNotice("The gateway runs on its embedded defaults, without a config file: start it with -config FILE to edit categories here.");
      }
      render();
      return true;
    }, function () {
      showError("The gateway cannot be reached.");
      return false;
    });
  }

  // ---- Drawing -------------------------------------------------------------

  function docCategory(name) {
    if (!doc || !doc.categories) {
      return -1;
    }
    for (var i = 0; i < doc.categories.length; i++) {
      if (doc.categories[i].name === name) {
        return i;
      }
    }
    return -1;
  }

  function rulesUsing(name) {
    var out = [];
    ((doc && doc.rules) || []).forEach(function (r) {
      if ((r.categories || []).indexOf(name) >= 0) {
        out.push(r);
      }
    });
    return out;
  }

  function totals() {
    var held = 0;
    cats.categories.forEach(function (c) { held += c.entries || 0; });
    $("t-categories").textContent = fmtInt(cats.categories.length);
    $("t-entries").textContent = cats.active ? fmtInt(held) : "–";
    $("t-domains").textContent = cats.active ? fmtInt(cats.domains) : "–";
    $("t-malformed").textContent = cats.active ? fmtInt(cats.malformed) : "–";
    var dd = $("t-malformed");
    dd.className = cats.malformed ? "bad" : "";
    $("t-policy").textContent = cats.active ?
      "Policy version " + cats.policy + ". Entries held count each category's distinct domains and its other entries; distinct domains count a domain in several categories once." :
      "No policy is in force (no rules, and everything allowed by default), so the gateway has not loaded the lists: counts appear once a rule is added.";
  }

  var KINDS = { inline: "Inline", file: "List file", remote: "Remote list", folder: "Folder file" };

  function sourcesTable(c) {
    var wrap = el("div", null, "scroll");
    wrap.setAttribute("tabindex", "0");
    wrap.setAttribute("role", "region");
    wrap.setAttribute("aria-label", "Sources of " + c.name);
    var t = el("table", null, "cat-sources");
    var cap = el("caption", "Sources of " + c.name, "sr-only");
    t.appendChild(cap);
    var COLS = ["Source", "Where", "Format", "Entries", "Malformed", "Last refresh"];
    var head = el("tr");
    COLS.forEach(function (h, i) {
      var th = el("th", h, i === 3 || i === 4 ? "num" : null);
      th.setAttribute("scope", "col");
      head.appendChild(th);
    });
    var thead = el("thead");
    thead.appendChild(head);
    t.appendChild(thead);
    var tb = el("tbody");
    if (!c.sources.length) {
      W.messageRow(tb, 6, "No sources: the category is empty.");
    }
    c.sources.forEach(function (s) {
      var tr = el("tr");
      tr.appendChild(el("td", KINDS[s.kind] || s.kind));
      var where = el("td", null, "where");
      if (s.kind === "inline") {
        where.textContent = "config: " + (s.format === "urls" ? "urls" : "domains");
      } else {
        var code = el("code", s.url || s.path || "");
        where.appendChild(code);
      }
      tr.appendChild(where);
      tr.appendChild(el("td", s.format || ""));
      tr.appendChild(el("td", s.entries === null || s.entries === undefined ? "–" : fmtInt(s.entries), "num"));
      tr.appendChild(el("td", fmtInt(s.malformed), s.malformed ? "num bad" : "num"));
      // One span, so that the cell stays one item when laid out as a grid.
      var when = el("td");
      var span = el("span");
      if (s.fetched) {
        var time = el("time", W.localTime(s.fetched, false));
        time.setAttribute("datetime", String(s.fetched));
        span.appendChild(time);
      }
      if (s.refresh) {
        span.appendChild(el("span", (span.firstChild ? " · " : "") + "every " + duration(s.refresh), "muted"));
      }
      if (s.error) {
        span.appendChild(el("span", (span.firstChild ? " · " : "") + s.error, "bad"));
      }
      if (!span.firstChild) {
        span.textContent = "—";
        when.className = "muted";
      }
      when.appendChild(span);
      tr.appendChild(when);
      // Narrow screens show each row as a block, labelled from these.
      Array.prototype.forEach.call(tr.children, function (td, i) { td.setAttribute("data-label", COLS[i]); });
      tb.appendChild(tr);
    });
    t.appendChild(tb);
    wrap.appendChild(t);
    return wrap;
  }

  function problemsList(c) {
    var box = el("div", null, "cat-problems");
    box.appendChild(el("h3", plural(c.problems.length, "problem", "problems") +
      (c.malformed > c.problems.length ? " (the first of " + fmtInt(c.malformed) + " malformed lines)" : "")));
    var ul = el("ul");
    c.problems.forEach(function (p) {
      var li = el("li");
      var m = /\.(domains|urls)\[\d+\]$/.exec(p.path || "");
      if (p.file === "inline" && m) {
        var w = el("span", "inline " + m[1] + ", line " + p.line, "where");
        w.setAttribute("title", p.path);
        li.appendChild(w);
      } else {
        li.appendChild(el("code", p.file + ":" + p.line, "where"));
      }
      li.appendChild(document.createTextNode(" " + p.reason + ": "));
      li.appendChild(el("code", p.text));
      ul.appendChild(li);
    });
    box.appendChild(ul);
    return box;
  }

  function countsList(c) {
    var dl = el("dl", null, "cat-counts");
    [["Domains", c.domains], ["URLs", c.urls], ["IPs", c.ips], ["Networks", c.networks],
      ["Expressions", c.expressions], ["Malformed", c.malformed]].forEach(function (kv) {
      var d = el("div");
      d.appendChild(el("dt", kv[0]));
      d.appendChild(el("dd", cats.active ? fmtInt(kv[1]) : "–", kv[0] === "Malformed" && kv[1] ? "bad" : null));
      dl.appendChild(d);
    });
    return dl;
  }

  // field builds a labelled textarea with its error line; prefix makes the
  // ids unique.
  function field(prefix, name, label, hint, values) {
    var box = el("div");
    var id = prefix + "-" + name;
    var lab = el("label", label + " ");
    lab.setAttribute("for", id);
    lab.appendChild(el("span", "(" + hint + ")", "muted"));
    box.appendChild(lab);
    var ta = el("textarea");
    ta.id = id;
    ta.name = name;
    ta.rows = Math.min(12, Math.max(4, values.length + 1));
    ta.setAttribute("autocapitalize", "none");
    ta.setAttribute("spellcheck", "false");
    ta.setAttribute("aria-describedby", id + "-err " + id + "-skipped");
    ta.value = values.join("\n");
    ta.wgOriginal = ta.value;
    box.appendChild(ta);
    var err = el("p", null, "field-error");
    err.id = id + "-err";
    err.hidden = true;
    box.appendChild(err);
    var skipped = el("p", null, "field-warn");
    skipped.id = id + "-skipped";
    skipped.hidden = true;
    box.appendChild(skipped);
    return box;
  }

  function editor(c, i, d) {
    var form = el("form", null, "cat-edit");
    form.setAttribute("novalidate", "");
    form.wgName = c.name;
    var prefix = "cat-" + i;
    form.appendChild(el("h3", "Inline entries, kept in the config file"));
    var fields = el("div", null, "cat-fields");
    fields.appendChild(field(prefix, "domains", "Domains, IP addresses and networks", "one per line", d.domains || []));
    fields.appendChild(field(prefix, "urls", "URL prefixes", "host/path, one per line", d.urls || []));
    form.appendChild(fields);
    // Entries the gateway skipped when it loaded the saved lists.
    c.problems.forEach(function (p) {
      var m = /^categories\[\d+\]\.(domains|urls)\[(\d+)\]$/.exec(p.path || "");
      if (m) {
        var w = form.querySelector("#" + prefix + "-" + m[1] + "-skipped");
        if (w) {
          w.textContent = (w.textContent ? w.textContent + " " : "") + "Line " + (Number(m[2]) + 1) +
            " (" + p.text + ") is skipped: " + p.reason + ".";
          w.hidden = false;
        }
      }
    });
    var err = el("div", null, "error");
    err.setAttribute("role", "alert");
    err.hidden = true;
    form.appendChild(err);
    form.wgError = err;
    var actions = el("div", null, "cat-actions");
    var save = el("button", "Save " + c.name);
    save.type = "submit";
    actions.appendChild(save);
    var revert = el("button", "Undo changes", "secondary");
    revert.type = "button";
    revert.addEventListener("click", function () {
      Array.prototype.forEach.call(form.querySelectorAll("textarea"), function (ta) {
        ta.value = ta.wgOriginal;
      });
      clearFieldErrors(form);
    });
    actions.appendChild(revert);
    var users = rulesUsing(c.name);
    var del = el("button", "Delete category…", "secondary danger");
    del.type = "button";
    var confirmBox = el("span", null, "cat-confirm");
    confirmBox.hidden = true;
    confirmBox.appendChild(el("span", "Delete " + c.name + " and its inline entries?"));
    var yes = el("button", "Yes, delete it", "danger");
    yes.type = "button";
    var no = el("button", "Keep it", "secondary");
    no.type = "button";
    confirmBox.appendChild(yes);
    confirmBox.appendChild(no);
    var why = null;
    if (users.length) {
      del.disabled = true;
      why = el("span", "In use by a rule: to delete it, take it out of the rules first.", "muted small");
      why.id = prefix + "-del-why";
      del.setAttribute("aria-describedby", why.id);
    }
    del.addEventListener("click", function () {
      confirmBox.hidden = false;
      del.hidden = true;
      no.focus();
    });
    no.addEventListener("click", function () {
      confirmBox.hidden = true;
      del.hidden = false;
      del.focus();
    });
    yes.addEventListener("click", function () {
      remove(form);
    });
    actions.appendChild(del);
    if (why) {
      actions.appendChild(why);
    }
    actions.appendChild(confirmBox);
    form.appendChild(actions);
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      saveCategory(form);
    });
    return form;
  }

  // readOnlyEntries lists the inline entries for those who cannot edit.
  function readOnlyEntries(d) {
    var all = (d.domains || []).concat(d.urls || []);
    var det = el("details", null, "cat-inline");
    det.appendChild(el("summary", "Inline entries (" + fmtInt(all.length) + ")"));
    var ul = el("ul", null, "entries");
    all.forEach(function (v) { ul.appendChild(el("li", v)); });
    det.appendChild(ul);
    return det;
  }

  function panel(c, i) {
    var sec = el("section", null, "panel cat");
    sec.id = "cat-" + i;
    sec.wgName = c.name;
    sec.setAttribute("aria-labelledby", "cat-" + i + "-h");
    var head = el("div", null, "cat-head");
    var h = el("h2", c.name);
    h.id = "cat-" + i + "-h";
    head.appendChild(h);
    head.appendChild(el("span", c.origin === "folder" ? "folder" : "config", "badge"));
    var total = el("span", cats.active ? plural(c.entries, "entry", "entries") : "not loaded", "cat-total");
    total.id = "cat-" + i + "-total";
    head.appendChild(total);
    sec.appendChild(head);
    var users = rulesUsing(c.name);
    if (doc) {
      sec.appendChild(el("p", users.length ? "Used by " + users.map(function (r) {
        return r.name + " (" + r.action + ")";
      }).join(", ") + "." : "Not used by any rule.", "muted"));
    }
    if (c.dir) {
      var p = el("p", "From the squidGuard folder ", "muted");
      p.appendChild(el("code", c.dir));
      p.appendChild(document.createTextNode(": edit its files on the gateway."));
      sec.appendChild(p);
    }
    sec.appendChild(countsList(c));
    sec.appendChild(sourcesTable(c));
    if (c.problems.length) {
      sec.appendChild(problemsList(c));
    }
    var di = docCategory(c.name);
    if (c.origin === "config" && di >= 0) {
      if (editable) {
        sec.appendChild(editor(c, i, doc.categories[di]));
      } else if ((doc.categories[di].domains || []).length + (doc.categories[di].urls || []).length > 0) {
        sec.appendChild(readOnlyEntries(doc.categories[di]));
      }
    }
    return sec;
  }

  // render draws every category; text an admin has typed but not saved is
  // kept.
  function render() {
    var typed = {};
    Array.prototype.forEach.call(list.querySelectorAll("form.cat-edit"), function (f) {
      Array.prototype.forEach.call(f.querySelectorAll("textarea"), function (ta) {
        if (ta.value !== ta.wgOriginal) {
          typed[f.wgName + "\n" + ta.name] = ta.value;
        }
      });
    });
    totals();
    clear(list);
    if (!cats.categories.length) {
      list.appendChild(el("p", "The policy has no categories yet." + (editable ? " Add one below." : ""), "muted"));
    }
    cats.categories.forEach(function (c, i) {
      list.appendChild(panel(c, i));
    });
    Array.prototype.forEach.call(list.querySelectorAll("form.cat-edit"), function (f) {
      Array.prototype.forEach.call(f.querySelectorAll("textarea"), function (ta) {
        var k = f.wgName + "\n" + ta.name;
        if (Object.prototype.hasOwnProperty.call(typed, k)) {
          ta.value = typed[k];
        }
      });
    });
    filter();
  }

  function filter() {
    var q = find ? find.value.trim().toLowerCase() : "";
    var n = 0, all = 0;
    Array.prototype.forEach.call(list.querySelectorAll("section.cat"), function (s) {
      var show = !q || String(s.wgName).toLowerCase().indexOf(q) >= 0;
      s.hidden = !show;
      all++;
      if (show) {
        n++;
      }
    });
    shown.textContent = q ? n + " of " + all + " categories shown." : "";
  }

  if (find) {
    find.addEventListener("input", filter);
  }

  // ---- Saving --------------------------------------------------------------

  function clearFieldErrors(form) {
    Array.prototype.forEach.call(form.querySelectorAll(".field-error"), function (p) {
      p.textContent = "";
      p.hidden = true;
    });
    Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (f) {
      f.removeAttribute("aria-invalid");
    });
    var err = form.wgError;
    clear(err);
    err.hidden = true;
  }

  function fieldError(form, name, text) {
    var f = form.querySelector('[name="' + name + '"]');
    if (!f) {
      return false;
    }
    var p = $(f.id + "-err");
    p.textContent = (p.textContent ? p.textContent + " " : "") + text;
    p.hidden = false;
    f.setAttribute("aria-invalid", "true");
    return true;
  }

  function formError(form, text, reload) {
    var err = form.wgError;
    err.appendChild(el("p", text));
    if (reload) {
      var b = el("button", "Load the current policy (your edits stay here)", "secondary");
      b.type = "button";
      b.addEventListener("click", function () {
        b.disabled = true;
        load().then(function (ok) {
          if (ok) {
            showNotice("Loaded the current policy. Redo or check your change, then save again.");
          }
        });
      });
      err.appendChild(b);
    }
    err.hidden = false;
  }

  // problems places the problems of a refused save: those of category
  // index idx next to their field, the others (with their path) above the
  // buttons.
  function problems(form, idx, probs, values) {
    var first = null;
    (probs || []).forEach(function (p) {
      var m = /^categories\[(\d+)\]\.(name|domains|urls)(?:\[(\d+)\])?/.exec(p.path || "");
      if (m && Number(m[1]) === idx) {
        var text = p.message;
        if (m[3] !== undefined) {
          var v = (values[m[2]] || [])[Number(m[3])];
          text = "Line " + (Number(m[3]) + 1) + (v !== undefined ? " (" + v + ")" : "") + ": " + p.message;
        }
        if (fieldError(form, m[2], text)) {
          first = first || form.querySelector('[name="' + m[2] + '"]');
          return;
        }
      }
      formError(form, (p.path ? p.path + ": " : "") + p.message);
    });
    if (first) {
      first.focus();
    }
  }

  // waitForReload polls the listing until the running policy is no longer
  // old (the gateway reloads after a save), at most about ten seconds.
  function waitForReload(old, tries) {
    return W.api("GET", "/api/v1/categories").then(function (r) {
      if (r.status === 200 && r.body && r.body.categories && r.body.categories.policy !== old) {
        return true;
      }
      if (tries <= 0) {
        return false;
      }
      return new Promise(function (resolve) {
        window.setTimeout(function () { resolve(waitForReload(old, tries - 1)); }, 500);
      });
    }, function () { return false; });
  }

  // put sends next (the whole policy document, with the version it was
  // edited from) and reports to form. done(form) runs after a save.
  function put(form, next, idx, values, what, done) {
    if (busy) {
      clearFieldErrors(form);
      formError(form, "Another save is still in progress: try again when it is done.");
      return;
    }
    if (!doc) {
      formError(form, "The policy cannot be read, so it cannot be saved.");
      return;
    }
    busy = true;
    var buttons = Array.prototype.slice.call(form.querySelectorAll("button"));
    var wasDisabled = buttons.map(function (b) { return b.disabled; });
    buttons.forEach(function (b) { b.disabled = true; });
    clearFieldErrors(form);
    showNotice("");
    var old = cats ? cats.policy : "";
    // Without a policy in force the counts do not change: wait briefly.
    var tries = cats && cats.active ? 20 : 2;
    W.api("PUT", "/api/v1/policy", next).then(function (r) {
      if (r.status === 200) {
        showNotice(what + " saved. The gateway is loading the new policy…");
        if (done) {
          done(form);
        }
        return waitForReload(old, tries).then(function (reloaded) {
          // The saved text is now the policy's: nothing typed to keep.
          Array.prototype.forEach.call(form.querySelectorAll("textarea"), function (ta) { ta.wgOriginal = ta.value; });
          return load().then(function () {
            if (cats && !cats.active) {
              showNotice(what + " saved.");
            } else {
              showNotice(reloaded ? what + " saved; the counts below are the new policy's." :
                what + " saved. The gateway has not reloaded yet: reload this page in a moment for the new counts.");
            }
          });
        });
      }
      if (r.status === 401) {
        loggedOut();
      } else if (r.status === 409) {
        formError(form, "The policy was changed elsewhere since this page loaded, so nothing was saved. " +
          "Load the current policy, check your change and save again.", true);
      } else if (r.status === 422) {
        problems(form, idx, r.body && r.body.problems, values);
        formError(form, "Nothing was saved: correct what is marked and save again.");
      } else {
        formError(form, errorText(r, "Saving"));
      }
    }, function () {
      formError(form, "The gateway cannot be reached: nothing was saved.");
    }).then(function () {
      busy = false;
      buttons.forEach(function (b, i) { b.disabled = wasDisabled[i]; });
    });
  }

  function copyDoc() {
    return W.copy(doc);
  }

  // setEntries sets the inline entries of category c of a document,
  // leaving out empty lists as the config file does.
  function setEntries(c, values) {
    ["domains", "urls"].forEach(function (k) {
      if (values[k].length) {
        c[k] = values[k];
      } else {
        delete c[k];
      }
    });
  }

  function formValues(form) {
    return {
      domains: lines(form.querySelector('[name="domains"]').value),
      urls: lines(form.querySelector('[name="urls"]').value)
    };
  }

  function saveCategory(form) {
    var next = copyDoc();
    var idx = docCategory(form.wgName);
    if (idx < 0) {
      formError(form, "This category is no longer in the policy: load the page again.");
      return;
    }
    var values = formValues(form);
    var cur = doc.categories[idx];
    if (values.domains.join("\n") === (cur.domains || []).join("\n") && values.urls.join("\n") === (cur.urls || []).join("\n")) {
      clearFieldErrors(form);
      showNotice("Nothing to save: the lists of " + form.wgName + " are unchanged.");
      return;
    }
    setEntries(next.categories[idx], values);
    put(form, next, idx, values, form.wgName);
  }

  function remove(form) {
    var next = copyDoc();
    var idx = docCategory(form.wgName);
    if (idx < 0) {
      formError(form, "This category is no longer in the policy: load the page again.");
      return;
    }
    next.categories.splice(idx, 1);
    put(form, next, -1, { domains: [], urls: [] }, "The deletion of " + form.wgName);
  }

  if (newForm) {
    newForm.wgError = $("new-error");
    newForm.addEventListener("submit", function (e) {
      e.preventDefault();
      clearFieldErrors(newForm);
      var name = $("new-name").value.trim();
      if (!name) {
        fieldError(newForm, "name", "Give the category a name.");
        $("new-name").focus();
        return;
      }
      if (!doc) {
        formError(newForm, "The policy cannot be read, so it cannot be saved.");
        return;
      }
      var next = copyDoc();
      next.categories = next.categories || [];
      var c = { name: name };
      var values = formValues(newForm);
      setEntries(c, values);
      next.categories.push(c);
      put(newForm, next, next.categories.length - 1, values, "Category " + name, function (f) {
        f.reset();
      });
    });
  }

  load();
})();
