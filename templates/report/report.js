// One diagnosis open at a time; Escape or a click elsewhere closes it. The row filter hides rows by status.
(function () {
  var cells = Array.prototype.slice.call(document.querySelectorAll("td.cell details"));
  function closeAll(except) {
    cells.forEach(function (d) { if (d !== except) { d.open = false; } });
  }
  cells.forEach(function (d) {
    d.addEventListener("toggle", function () { if (d.open) { closeAll(d); } });
  });
  document.addEventListener("keydown", function (e) { if (e.key === "Escape") { closeAll(null); } });
  document.addEventListener("click", function (e) {
    if (!e.target.closest("td.cell")) { closeAll(null); }
  });
  var filter = document.getElementById("row-filter");
  filter.addEventListener("change", function () {
    document.body.classList.toggle("only-failures", filter.value === "failures");
    document.body.classList.toggle("only-unexpected", filter.value === "unexpected");
  });
})();
