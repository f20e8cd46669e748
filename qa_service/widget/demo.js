// Fill the embed snippet with this server's own address, so it can be copied as it is.
(function () {
  "use strict";
  var code = document.querySelector("#snippet code");
  if (!code) return;
  var origin = window.location.origin;
  code.textContent =
    '<script src="' + origin + '/widget.js"\n' +
    '        data-api="' + origin + '"\n' +
    '        data-title="Ask the archive"\n' +
    '        data-accent="#1f5f99"\n' +
    '        data-position="bottom-right"\n' +
    '        data-top-k="5"\n' +
    "        defer></" + "script>";
})();
