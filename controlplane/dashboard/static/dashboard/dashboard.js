// Small enhancements for every page. The pages work without them: forms post normally.
"use strict";

(function () {
  function copyText(text) {
    // The Clipboard API needs a secure context (HTTPS or localhost); fall back to a selection copy.
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    const copied = document.execCommand("copy");
    area.remove();
    return copied ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function setUpCopyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        const source = document.querySelector(button.dataset.copy);
        // Inputs copy their value; blocks of text (a client configuration) their text.
        const text = source && ("value" in source ? source.value : source.textContent);
        if (!text) return;
        const label = button.textContent;
        copyText(text).then(
          function () { button.textContent = "Copied"; },
          function () { if (source.select) source.select(); button.textContent = "Press Ctrl+C"; }
        );
        setTimeout(function () { button.textContent = label; }, 1800);
      });
    });
  }

  function setUpConfirmations() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  }

  // Refreshes the placement preview as the layout fields change, from the same server-side code the
  // "Preview placement" button uses.
  function setUpPlacementPreview() {
    const panel = document.getElementById("placement-preview");
    const form = document.getElementById("cluster-form");
    if (!panel || !form) return;
    const fields = ["brokers", "racks", "replication_factor", "min_insync_replicas"];
    let timer = null;
    let latest = 0;

    function refresh() {
      const query = new URLSearchParams();
      fields.forEach(function (name) {
        const input = form.elements.namedItem(name);
        if (input) query.set(name, input.value);
      });
      const request = ++latest;
      fetch(panel.dataset.previewUrl + "?" + query.toString(), { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : Promise.reject(response); })
        .then(function (html) {
          // Answers can arrive out of order; only the newest one describes what is in the form.
          if (request === latest) panel.innerHTML = html;
        })
        .catch(function () { /* keep the last preview; the button still works */ });
    }

    fields.forEach(function (name) {
      const input = form.elements.namedItem(name);
      if (!input) return;
      input.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(refresh, 250);
      });
    });
  }

  // Filter forms apply as soon as a choice changes; their button stays for browsers without scripts.
  function setUpAutoSubmit() {
    document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
      form.querySelectorAll("select").forEach(function (select) {
        select.addEventListener("change", function () { form.submit(); });
      });
    });
  }

  // A channel form shows only the settings of the chosen kind. Without scripts every kind's
  // fieldset is shown, labelled, and only the chosen kind's values are used.
  function setUpKindFields() {
    document.querySelectorAll("form[data-kind-form]").forEach(function (form) {
      const kind = form.elements.namedItem("kind");
      if (!kind) return;
      function show() {
        form.querySelectorAll(".kind-fields").forEach(function (fieldset) {
          const chosen = fieldset.dataset.kind === kind.value;
          fieldset.hidden = !chosen;
          fieldset.disabled = !chosen;
        });
      }
      kind.addEventListener("change", show);
      show();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUpCopyButtons();
    setUpConfirmations();
    setUpPlacementPreview();
    setUpAutoSubmit();
    setUpKindFields();
  });
})();
