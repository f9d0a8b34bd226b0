// gridvm portal, "My images": "Show shared images" applies on change, and uploads go
// through the resumable upload API (/api/v1/uploads) in chunks with a progress bar.
// Without this script the same forms post to /ui/images/... and work as well.
"use strict";
(function () {
  const CHUNK = 8 * 1024 * 1024;
  const MIB = 1024 * 1024;
  const SUFFIXES = [".qcow2", ".qcow", ".img", ".raw", ".vmdk", ".vdi"];

  document.documentElement.classList.add("js-images");

  const showShared = document.getElementById("show-shared");
  if (showShared) {
    showShared.addEventListener("change", () => showShared.form.submit());
  }

  function mib(bytes) {
    return (bytes / MIB).toFixed(bytes < 10 * MIB ? 1 : 0);
  }

  function defaultName(fileName) {
    const lower = fileName.toLowerCase();
    for (const suffix of SUFFIXES) {
      if (lower.endsWith(suffix) && fileName.length > suffix.length) {
        return fileName.slice(0, -suffix.length);
      }
    }
    return fileName;
  }

  // The API's message (and hint) from an XMLHttpRequest's JSON error body.
  function xhrError(xhr) {
    try {
      const body = JSON.parse(xhr.responseText);
      if (body && body.message) return body.message + (body.hint ? " (" + body.hint + ")" : "");
    } catch (ignored) {
      // not JSON: fall back to the status line
    }
    return "the server answered " + xhr.status + " " + xhr.statusText;
  }

  // PATCH one chunk at ``offset``; ``onBytes(sent)`` follows the chunk's own progress.
  function sendChunk(uploadId, offset, blob, onBytes) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("PATCH", "/api/v1/uploads/" + encodeURIComponent(uploadId));
      xhr.setRequestHeader("Upload-Offset", String(offset));
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.setRequestHeader("X-CSRF-Token", window.gridvm.csrf());
      xhr.upload.addEventListener("progress", (event) => onBytes(event.loaded));
      xhr.addEventListener("load", () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          resolve(JSON.parse(xhr.responseText));
        } else {
          reject(new Error(xhrError(xhr)));
        }
      });
      xhr.addEventListener("error", () => reject(new Error("the connection to the server broke")));
      xhr.send(blob);
    });
  }

  const form = document.getElementById("upload-form");
  if (!form) return;
  const fileInput = document.getElementById("upload-file");
  const nameInput = document.getElementById("upload-name");
  const button = document.getElementById("upload-button");
  const bar = document.getElementById("upload-progress");
  const text = document.getElementById("upload-progress-text");

  function show(sent, total) {
    document.getElementById("upload-status").hidden = false;
    bar.max = Math.max(total, 1);
    bar.value = sent;
    text.textContent = mib(sent) + " of " + mib(total) + " MiB";
  }

  async function upload(file, name) {
    const total = file.size;
    const session = await window.gridvm.api("/uploads", {
      method: "POST",
      json: { name: name, visibility: "private", total_bytes: total },
    });
    try {
      let offset = 0;
      show(0, total);
      while (offset < total) {
        const end = Math.min(offset + CHUNK, total);
        const start = offset;
        const done = await sendChunk(session.id, start, file.slice(start, end), (sent) =>
          show(start + sent, total)
        );
        offset = done.received_bytes;
        show(offset, total);
      }
      text.textContent = mib(total) + " of " + mib(total) + " MiB; checking the image…";
      return await window.gridvm.api("/uploads/" + encodeURIComponent(session.id) + "/complete", {
        method: "POST",
      });
    } catch (error) {
      // A failed upload leaves nothing behind: the session and its bytes go.
      try {
        await window.gridvm.api("/uploads/" + encodeURIComponent(session.id), {
          method: "DELETE",
        });
      } catch (ignored) {
        // ended already (a refused image ends its session)
      }
      throw error;
    }
  }

  form.addEventListener("submit", async (event) => {
    const file = fileInput.files && fileInput.files[0];
    if (!file) return; // the browser's own "required" message, or the server's
    event.preventDefault();
    const name = nameInput.value.trim() || defaultName(file.name);
    button.disabled = true;
    try {
      const image = await upload(file, name);
      text.textContent = "Done.";
      window.gridvm.announceAfterReload("Uploaded image " + image.name + ":" + image.version + ".");
      window.location.assign(window.location.pathname + window.location.search);
    } catch (error) {
      bar.value = 0;
      text.textContent = "";
      window.gridvm.announce("The upload failed: " + error.message, true);
    } finally {
      button.disabled = false;
    }
  });
})();
