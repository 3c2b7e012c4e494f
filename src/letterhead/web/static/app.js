/* Letterhead merchant UI: small enhancements over pages that work without JavaScript.
 * - Custom email settings: presets fill host/port/security and show the provider's steps; "Send test email" runs
 *   in place with live results; Save stays disabled until a test with exactly the current values passed, and
 *   editing any setting disables it again (the server refuses a save without a matching proof anyway).
 * - Notifications: live template preview.
 * - Email authentication: DNS record values select themselves on focus and have a Copy button.
 */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  // --- custom SMTP settings ----------------------------------------------------------------------------------
  function setupSmtp() {
    var form = $("#smtp-form");
    if (!form) return;
    var proof = $("[data-role=proof]", form);
    var save = $("[data-role=save]", form);
    var state = $("[data-role=save-state]", form);
    var resultBox = $("[data-role=result]", form);
    var testButton = $("[data-role=test]", form);
    var presetValue = $("[data-role=preset-value]", form);
    var presetSelect = $("#preset-select");
    var presets = {};
    try { presets = JSON.parse(($("#presets-data") || {}).textContent || "{}"); } catch (e) { presets = {}; }
    // Fields that are not part of the settings being proven.
    var notSettings = { csrf: 1, proof: 1, to: 1, activate: 1, password_sealed: 1 };

    function setState(kind) {
      state.classList.remove("ready", "edited");
      if (kind === "ready") { state.textContent = form.dataset.ready; state.classList.add("ready"); }
      else if (kind === "edited") { state.textContent = form.dataset.edited; state.classList.add("edited"); }
      else { state.textContent = form.dataset.hint; }
    }

    function invalidate() {
      if (proof.value) {
        proof.value = "";
        setState("edited");
      }
      save.disabled = true;
    }

    function clearFieldErrors() {
      $all("[data-error-for]", form).forEach(function (el) { el.hidden = true; el.textContent = ""; });
      $all("[aria-invalid=true]", form).forEach(function (el) { el.removeAttribute("aria-invalid"); });
    }

    function showFieldErrors(fields) {
      Object.keys(fields || {}).forEach(function (name) {
        var box = $('[data-error-for="' + name + '"]', form);
        var input = form.elements[name];
        if (box) { box.textContent = fields[name]; box.hidden = false; }
        if (input && input.setAttribute) input.setAttribute("aria-invalid", "true");
      });
    }

    form.addEventListener("input", function (e) {
      if (e.target && e.target.name && !notSettings[e.target.name]) invalidate();
    });
    form.addEventListener("change", function (e) {
      if (e.target && e.target.name && !notSettings[e.target.name]) invalidate();
    });

    if (presetSelect) {
      presetSelect.addEventListener("change", function () {
        var id = presetSelect.value;
        var p = presets[id] || {};
        presetValue.value = id;
        if (p.host) form.elements.host.value = p.host;
        else if (id === "custom") form.elements.host.value = "";
        if (p.port) form.elements.port.value = p.port;
        if (p.security) form.elements.security.value = p.security;
        $all("[data-preset-steps]").forEach(function (el) { el.hidden = el.dataset.presetSteps !== id; });
        $all("[data-preset-hint]").forEach(function (el) { el.hidden = el.dataset.presetHint !== id; });
        invalidate();
      });
    }

    form.addEventListener("submit", function (e) {
      var submitter = e.submitter;
      if (!submitter || submitter.dataset.role !== "test") {
        if (save.disabled) e.preventDefault();  // Enter in a field never saves without a proof
        return;
      }
      e.preventDefault();
      runTest();
    });

    function runTest() {
      var data = new FormData(form);
      clearFieldErrors();
      testButton.disabled = true;
      testButton.classList.add("busy");
      save.disabled = true;
      proof.value = "";
      resultBox.innerHTML = "";
      var sending = document.createElement("p");
      sending.className = "muted";
      sending.textContent = form.dataset.sending;
      resultBox.appendChild(sending);
      fetch(form.dataset.testUrl, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { "Accept": "application/json" }
      }).then(function (response) {
        return response.json();
      }).then(function (out) {
        if (out.html) resultBox.innerHTML = out.html;  // rendered and escaped by the server
        else if (out.error) {
          resultBox.innerHTML = "";
          var p = document.createElement("p");
          p.className = "notice error";
          p.setAttribute("role", "alert");
          p.textContent = out.error;
          resultBox.appendChild(p);
        }
        showFieldErrors(out.fields);
        if (out.ok && out.proof) {
          proof.value = out.proof;
          save.disabled = false;
          setState("ready");
        } else {
          setState("hint");
        }
      }).catch(function () {
        resultBox.innerHTML = "";
        var p = document.createElement("p");
        p.className = "notice error";
        p.setAttribute("role", "alert");
        p.textContent = form.dataset.networkError || "Network error";
        resultBox.appendChild(p);
      }).then(function () {
        testButton.disabled = false;
        testButton.classList.remove("busy");
      });
    }
  }

  // --- notification template editor: live preview ------------------------------------------------------------
  function setupPreview() {
    var form = $("#template-form");
    if (!form || !form.dataset.previewUrl) return;
    var frame = $("#preview-frame");
    var subject = $("[data-role=preview-subject]");
    var errorBox = $("[data-role=preview-error]");
    var timer = null;
    var seq = 0;

    function refresh() {
      var mine = ++seq;
      var data = new FormData(form);
      fetch(form.dataset.previewUrl, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { "Accept": "application/json" }
      }).then(function (r) { return r.json(); }).then(function (out) {
        if (mine !== seq) return;
        if (out.ok) {
          errorBox.hidden = true;
          errorBox.textContent = "";
          if (subject) subject.textContent = out.subject || "";
          if (frame) frame.srcdoc = out.html || "";
        } else {
          errorBox.hidden = false;
          errorBox.textContent = out.error || "";
        }
      }).catch(function () { /* keep the last preview */ });
    }

    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 350);
    });
  }

  // --- sending domains: copy record values --------------------------------------------------------------------
  function setupCopy() {
    $all(".copy-field").forEach(function (field) {
      field.addEventListener("focus", function () { field.select(); });
    });
    $all("[data-copy]").forEach(function (button) {
      var label = button.textContent;
      button.addEventListener("click", function () {
        var field = $(".copy-field", button.parentNode);
        if (!field) return;
        function done() {
          button.textContent = button.dataset.copied || label;
          button.classList.add("done");
          setTimeout(function () { button.textContent = label; button.classList.remove("done"); }, 2000);
        }
        function fallback() {
          field.focus();
          field.select();
          try { if (document.execCommand("copy")) done(); } catch (e) { /* the value stays selected */ }
        }
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(field.value).then(done, fallback);
        } else {
          fallback();
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupSmtp();
    setupPreview();
    setupCopy();
  });
})();
