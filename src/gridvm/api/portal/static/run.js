// gridvm portal, Run page: the user-data field indents with Tab.
// Keyboard users can always leave it: Shift+Tab moves back as usual, and after Escape the
// next Tab moves on (the help text under the field says so).
"use strict";
(function () {
  const editor = document.getElementById("user-data");
  if (!editor) return;
  document.querySelectorAll(".js-only").forEach((hint) => { hint.hidden = false; });
  let escaped = false;

  editor.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      escaped = true;
      return;
    }
    if (event.key !== "Tab" || event.shiftKey || event.ctrlKey || event.altKey || event.metaKey) {
      escaped = false;
      return;
    }
    if (escaped) {
      escaped = false;
      return; // let Tab move the focus on
    }
    event.preventDefault();
    const start = editor.selectionStart;
    const end = editor.selectionEnd;
    editor.setRangeText("  ", start, end, "end");
  });
  editor.addEventListener("blur", () => { escaped = false; });
})();
