// gridvm portal, "My images": "Show shared images" applies on change, and uploads go
// through the resumable upload API (/api/v1/uploads) in chunks with a progress bar.
// A chunk that fails (connection lost, server error, offset mismatch) is retried from the
// server's offset after a growing pause; an upload cut off (reload, closed tab, connection
// gone for good) is kept on the server and in localStorage, and picking the same file again
// resumes it. Without this script the same forms post to /ui/images/... and work as well.
"use strict";
(function () {
  const CHUNK = 8 * 1024 * 1024;
  const MIB = 1024 * 1024;
  const SUFFIXES = [".qcow2", ".qcow", ".img", ".raw", ".vmdk", ".vdi"];
  const RETRY_DELAYS_MS = [1000, 2000, 4000, 8000];
  const STORE_KEY = "gridvm-unfinished-uploads";

  document.documentElement.classList.add("js-images");

  const showShared = document.getElementById("show-shared");
  if (showShared) {
    showShared.addEventListener("change", () => showShared.form.submit());
  }

  function mib(bytes) {
    return (bytes / MIB).toFixed(bytes < 10 * MIB ? 1 : 0);
  }

  function percent(sent, total) {
    return total > 0 ? Math.floor((100 * sent) / total) : 100;
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

  function pause(ms) {
    return new Promise((resolve) => window.setTimeout(resolve, ms));
  }

  // An API failure: ``status`` 0 when the connection broke (no answer at all).
  class UploadError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
    // Worth trying again from the server's offset: no answer, a server error, a 409
    // (offset mismatch, or the server still busy with the chunk that was cut off).
    get transient() {
      return this.status === 0 || this.status === 409 || this.status >= 500;
    }
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

  // --- unfinished uploads this browser knows (localStorage) --------------------------
  function fileKey(file) {
    return [file.name, file.size, file.lastModified].join("\u0000");
  }

  function remembered() {
    try {
      const list = JSON.parse(window.localStorage.getItem(STORE_KEY) || "[]");
      return Array.isArray(list) ? list : [];
    } catch (ignored) {
      return [];
    }
  }

  function keep(list) {
    try {
      window.localStorage.setItem(STORE_KEY, JSON.stringify(list));
    } catch (ignored) {
      // storage full or disabled: uploads still work, only resuming after a reload does not
    }
  }

  function remember(file, uploadId, imageName) {
    const key = fileKey(file);
    const list = remembered().filter((entry) => entry.key !== key);
    list.push({
      key: key,
      id: uploadId,
      file: file.name,
      size: file.size,
      lastModified: file.lastModified,
      name: imageName,
    });
    keep(list);
  }

  function forget(uploadId) {
    keep(remembered().filter((entry) => entry.id !== uploadId));
  }

  function recall(file) {
    const key = fileKey(file);
    return remembered().find((entry) => entry.key === key) || null;
  }

  // --- the upload API ------------------------------------------------------------------
  // GET /uploads/ID: the session (with received_bytes), or null if the server no longer has it.
  async function session(uploadId) {
    let response;
    try {
      response = await fetch("/api/v1/uploads/" + encodeURIComponent(uploadId), {
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (error) {
      throw new UploadError("the connection to the server broke", 0);
    }
    if (response.status === 404) return null;
    if (!response.ok) {
      throw new UploadError("the server answered " + response.status, response.status);
    }
    return await response.json();
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
          reject(new UploadError(xhrError(xhr), xhr.status));
        }
      });
      xhr.addEventListener("error", () =>
        reject(new UploadError("the connection to the server broke", 0))
      );
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

  // Chunk size: the page's data-chunk-bytes (read at each upload), else 8 MiB.
  function chunkBytes() {
    const wanted = Number(form.dataset.chunkBytes);
    return Number.isInteger(wanted) && wanted > 0 ? wanted : CHUNK;
  }

  // Progress: percent, bytes sent of total and the rate over the last few seconds.
  let samples = [];
  function show(sent, total) {
    document.getElementById("upload-status").hidden = false;
    bar.max = Math.max(total, 1);
    bar.value = sent;
    const now = window.performance.now();
    samples.push([now, sent]);
    while (samples.length > 2 && now - samples[0][0] > 5000) samples.shift();
    const [since, from] = samples[0];
    const seconds = (now - since) / 1000;
    const rate = seconds > 0.2 && sent >= from ? (sent - from) / MIB / seconds : null;
    text.textContent =
      percent(sent, total) +
      "%: " +
      mib(sent) +
      " of " +
      mib(total) +
      " MiB sent" +
      (rate === null ? "" : ", " + rate.toFixed(1) + " MiB/s");
  }

  // Send the file's bytes from ``offset`` on; a failed chunk is retried from the server's
  // offset after a growing pause. Rejects with the last error when the retries run out or
  // the server refuses for good (a 4xx other than 409).
  async function sendFrom(file, uploadId, offset) {
    const total = file.size;
    const size = chunkBytes();
    let failures = 0;
    samples = [];
    show(offset, total);
    while (offset < total) {
      const start = offset;
      const end = Math.min(start + size, total);
      try {
        const done = await sendChunk(uploadId, start, file.slice(start, end), (sent) =>
          show(start + sent, total)
        );
        offset = done.received_bytes;
        if (failures > 0) {
          window.gridvm.announce(
            "Connection back: the upload goes on from " + percent(start, total) + "%.",
            false
          );
        }
        failures = 0;
        show(offset, total);
      } catch (error) {
        if (!(error instanceof UploadError) || !error.transient) throw error;
        if (failures >= RETRY_DELAYS_MS.length) throw error;
        failures += 1;
        window.gridvm.announce(
          "Connection lost, retrying (" + failures + " of " + RETRY_DELAYS_MS.length + ")...",
          false
        );
        await pause(RETRY_DELAYS_MS[failures - 1]);
        try {
          const now = await session(uploadId);
          if (now === null) {
            throw new UploadError("the server no longer has this upload; start it again", 404);
          }
          offset = now.received_bytes;
          samples = [];
          show(offset, total);
        } catch (asked) {
          if (!(asked instanceof UploadError) || !asked.transient) throw asked;
          // no answer yet either: the next chunk's 409 will tell the offset
        }
      }
    }
  }

  // The earlier upload of this file, if this browser started one the server still has.
  async function earlier(file, name) {
    const entry = recall(file);
    if (entry === null) return null;
    if (name && name !== entry.name) return null; // another image name: a new upload
    const found = await session(entry.id);
    if (found === null || found.total_bytes !== file.size) {
      forget(entry.id);
      return null;
    }
    return found;
  }

  async function upload(file, typedName) {
    const total = file.size;
    let current = await earlier(file, typedName);
    if (current !== null) {
      window.gridvm.announce(
        "Resuming the earlier upload of " +
          file.name +
          " (" +
          percent(current.received_bytes, total) +
          "% sent).",
        false
      );
    } else {
      current = await window.gridvm.api("/uploads", {
        method: "POST",
        json: {
          name: typedName || defaultName(file.name),
          visibility: "private",
          total_bytes: total,
        },
      });
      remember(file, current.id, current.name);
    }
    const uploadId = current.id;
    const path = "/uploads/" + encodeURIComponent(uploadId);
    try {
      await sendFrom(file, uploadId, current.received_bytes);
      text.textContent =
        "100%: " + mib(total) + " of " + mib(total) + " MiB sent; checking the image…";
      const image = await window.gridvm.api(path + "/complete", { method: "POST" });
      forget(uploadId);
      return image;
    } catch (error) {
      if (error instanceof UploadError && error.transient) {
        // Cut off, not refused: the server keeps what it received, to resume later.
        throw new Error(
          error.message +
            ". The server keeps what it received: choose the same file again to resume."
        );
      }
      // Refused: nothing is left behind, the session and its bytes go.
      forget(uploadId);
      try {
        await window.gridvm.api(path, { method: "DELETE" });
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
    button.disabled = true;
    try {
      const image = await upload(file, nameInput.value.trim());
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
