// The one script: a "select all" checkbox for the bulk forms. Pages work without it.
document.addEventListener("change", function (event) {
  var box = event.target;
  var name = box && box.getAttribute && box.getAttribute("data-select-all");
  if (!name) { return; }
  document.querySelectorAll('input[type="checkbox"][name="' + name + '"]').forEach(function (item) {
    item.checked = box.checked;
  });
});
// "打印本页": the browser's print dialog; the print styles (app.css @media print) drop navigation and forms.
document.addEventListener("click", function (event) {
  var button = event.target && event.target.closest && event.target.closest("[data-print]");
  if (button) { window.print(); }
});
