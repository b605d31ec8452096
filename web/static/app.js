// The one script: a "select all" checkbox for the bulk forms, and a confirmation naming the count before a bulk
// decision (data-confirm; data-confirm-sum adds up the ticked boxes' data-undecided). Pages work without it: the
// forms post confirm=ask and the server answers with a confirmation page (web/bulk_confirm.py).
document.addEventListener("change", function (event) {
  var box = event.target;
  var name = box && box.getAttribute && box.getAttribute("data-select-all");
  if (!name) { return; }
  document.querySelectorAll('input[type="checkbox"][name="' + name + '"]').forEach(function (item) {
    item.checked = box.checked;
  });
});

document.addEventListener("click", function (event) {
  var button = event.target && event.target.closest ? event.target.closest("button[data-confirm]") : null;
  if (!button) { return; }
  var message = button.getAttribute("data-confirm");
  var sum = button.getAttribute("data-confirm-sum");
  if (sum) {
    var gates = 0, count = 0;
    document.querySelectorAll('input[type="checkbox"][name="' + sum + '"]:checked').forEach(function (box) {
      gates += 1;
      count += parseInt(box.getAttribute("data-undecided") || "0", 10);
    });
    if (gates === 0) { return; }  // nothing ticked: the server says so
    message = message.replace("{gates}", gates).replace("{count}", count);
  }
  if (!window.confirm(message)) { event.preventDefault(); return; }
  // Asked here: the server need not ask again (without the script it shows its own confirmation page).
  var confirmField = button.form && button.form.querySelector('input[name="confirm"]');
  if (confirmField) { confirmField.value = "given"; }
});

// "打印本页": the browser's print dialog; the print styles (app.css @media print) drop navigation and forms.
document.addEventListener("click", function (event) {
  var button = event.target && event.target.closest && event.target.closest("[data-print]");
  if (button) { window.print(); }
});
