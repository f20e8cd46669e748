// Text helpers shared by widget.js, read.js and admin.js: qa_service/pages.py puts this file
// in place of each one's include line when it serves them, so that the widget stays one
// script on the pages that embed it. Plain function declarations: they land inside each
// script's own closure.

// The API counts offsets in Unicode code points (Python str); JS strings index UTF-16 code
// units, so text with emoji or other astral characters would be marked off by one each.
function codeUnitIndex(text, codePoints) {
  var units = 0;
  for (var cp = 0; cp < codePoints && units < text.length; cp++) {
    var c = text.charCodeAt(units);
    units += c >= 0xd800 && c <= 0xdbff && units + 1 < text.length ? 2 : 1;
  }
  return units;
}

// The length of `text` in code points, as the API counts it.
function codePointLength(text) {
  var n = 0;
  for (var i = 0; i < text.length; i++) {
    var c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) i++;
    n++;
  }
  return n;
}

// Article urls come from the archive: only plain web links, never javascript: and the like.
function safeHttpUrl(value) {
  if (typeof value !== "string" || !value) return null;
  try {
    var url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch (e) {
    return null;
  }
}
