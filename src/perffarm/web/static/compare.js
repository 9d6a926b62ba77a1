// The comparison's filter form: choosing a verdict applies it at once. Sorting, filtering
// and paging are done by the server over every row, and kept in the address (shareable).
(function () {
  "use strict";
  var form = document.getElementById("compare-filter");
  var verdict = document.getElementById("verdict");
  if (form && verdict) verdict.addEventListener("change", function () { form.submit(); });
})();
