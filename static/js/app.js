// Small progressive enhancements; every page works without this file.
(function () {
  function toast(message, level) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var el = document.createElement("div");
    el.className = "toast toast-" + (level || "success");
    el.setAttribute("role", level === "error" ? "alert" : "status");
    el.setAttribute("data-announced", "1");
    el.textContent = message;
    box.appendChild(el);
    setTimeout(function () { el.remove(); }, 6500);
  }
  // Servers send HX-Trigger: {"toast": {"message": "...", "level": "success"}}
  document.body.addEventListener("toast", function (evt) {
    toast(evt.detail.message, evt.detail.level);
  });
  document.body.addEventListener("htmx:responseError", function (evt) {
    var status = evt.detail.xhr.status;
    var text = status === 403 ? "You do not have permission to do that."
      : status === 401 ? "Your session ended. Please sign in again."
      : status === 429 ? "Too many attempts. Please wait a minute."
      : "Something went wrong (" + status + "). Nothing was saved.";
    toast(text, "error");
  });
  // <button data-confirm="Cancel this request?"> asks before submitting (with or without htmx).
  document.addEventListener("click", function (evt) {
    var el = evt.target.closest("[data-confirm]");
    if (el && !window.confirm(el.getAttribute("data-confirm"))) {
      evt.preventDefault();
      evt.stopImmediatePropagation();
    }
  }, true);
  // <input type=file data-max-bytes="..." data-too-large="..."> : a file over the limit is reported
  // before sending (the server checks again), so nothing typed is sent away for a 413.
  function fileTooLarge(input) {
    var max = parseInt(input.getAttribute("data-max-bytes"), 10);
    var file = input.files && input.files[0];
    input.setCustomValidity(file && max && file.size > max ? input.getAttribute("data-too-large") : "");
    return !input.checkValidity();
  }
  document.addEventListener("change", function (evt) {
    if (evt.target.matches && evt.target.matches("input[type=file][data-max-bytes]") && fileTooLarge(evt.target)) {
      evt.target.reportValidity();
    }
  });
  document.addEventListener("submit", function (evt) {
    var inputs = evt.target.querySelectorAll("input[type=file][data-max-bytes]");
    for (var i = 0; i < inputs.length; i++) {
      if (fileTooLarge(inputs[i])) { evt.preventDefault(); inputs[i].reportValidity(); return; }
    }
  }, true);
  document.addEventListener("click", function (evt) {
    var el = evt.target.closest("[data-check-all]");
    if (!el) return;
    var scope = document.querySelector(el.getAttribute("data-check-all"));
    if (!scope) return;
    // A named "check all" box is itself the choice (e.g. name="all"): while it is ticked the boxes it
    // covers are disabled, so the form sends that one choice instead of every id.
    scope.querySelectorAll("input[type=checkbox]").forEach(function (cb) {
      cb.checked = el.checked;
      if (el.name) cb.disabled = el.checked;
    });
  });
  document.addEventListener("click", function (evt) {
    var opener = evt.target.closest("[data-open-dialog]");
    if (opener) { var d = document.querySelector(opener.getAttribute("data-open-dialog")); if (d) { evt.preventDefault(); d.showModal(); } }
    var closer = evt.target.closest("[data-close-dialog]");
    if (closer) { var dlg = closer.closest("dialog"); if (dlg) dlg.close(); }
  });
  // After a page load or an htmx swap, the first error summary or [data-focus-on-render] element in the new
  // content (form errors, a declined payment) is scrolled into view and focused, so keyboard and screen-reader
  // users land on it; an element with data-toast="..." also shows that text as a toast (#toasts is aria-live).
  function announce(root) {
    if (!root || !root.querySelector) return;
    var sel = "[data-focus-on-render], .error-summary";
    var target = root.matches(sel) ? root : root.querySelector(sel);
    if (target) {
      if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
      target.scrollIntoView({block: "center"});
      target.focus({preventScroll: true});
    }
    // Toasts the server rendered into the page (flashed messages) arrive with the page, which screen readers
    // do not read out as live-region changes: a moment later their text node is replaced by an equal one (no
    // visible change), which the aria-live region announces.
    var rendered = root.querySelectorAll("#toasts .toast:not([data-announced])");
    Array.prototype.forEach.call(rendered, function (el) {
      el.setAttribute("data-announced", "1");
      setTimeout(function () { el.textContent = el.textContent; }, 150);
    });
    var noted = Array.prototype.slice.call(root.querySelectorAll("[data-toast]:not([data-toasted])"));
    if (root.matches("[data-toast]:not([data-toasted])")) noted.unshift(root);
    for (var i = 0; i < noted.length; i++) {
      noted[i].setAttribute("data-toasted", "1");
      toast(noted[i].getAttribute("data-toast"), noted[i].getAttribute("data-toast-level") || "success");
    }
  }
  announce(document.body);
  document.body.addEventListener("htmx:afterSettle", function (evt) {
    var t = evt.detail.target;
    announce(t && t.isConnected ? t : (t && t.id && document.getElementById(t.id)) || null);
  });
})();
