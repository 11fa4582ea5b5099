// The screening queue, keyboard first.
//
// A verdict goes to the row that had the focus when its key was pressed, whatever the network
// does: the focus moves on at once, and saves go out one after another, in the order of the
// keys, behind the reviewer. A save that fails is retried, then shown on its row and in a
// banner until it is given again; the page is not left while saves are pending.
(() => {
  "use strict";
  const queue = document.getElementById("queue");
  const night = queue.dataset.night;
  const screening = queue.dataset.screening === "1";
  const rows = Array.from(document.querySelectorAll(".qrow"));
  const classes = JSON.parse(document.getElementById("stamp-classes").textContent).map((c) => c[0]);
  const toast = document.getElementById("toast");
  const help = document.getElementById("help");
  const menu = document.getElementById("class-menu");
  const unsavedBanner = document.getElementById("unsaved");
  const endOfPage = document.getElementById("queue-end");
  const RETRY_DELAYS = [300, 1000, 3000];  // then the save is reported as failed
  const POLL_MS = 3000;  // other reviewers' claims and verdicts: short polling
  const focusKey = `queue-focus:${location.pathname}${location.search}`;
  let current = -1;  // rows.length: past the last row (the end-of-page note has the focus)
  let stampIndex = 0;
  let leaving = false;  // a page change was asked for: no more keys on this page
  let keepClaims = false;  // leaving for a tracklet's page: keep this page's rows
  const saves = [];  // pending saves, in key order; saves[0] is in flight
  let pumping = false;
  const failed = new Map();  // row -> what was not saved

  // --- talking to the server ------------------------------------------------------------------

  function csrfToken() {
    const cookie = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
    return cookie ? decodeURIComponent(cookie.split("=")[1]) : "";
  }

  function say(text, isError) {
    toast.textContent = text;
    toast.classList.toggle("error", Boolean(isError));
    toast.hidden = false;
    clearTimeout(say.timer);
    if (!isError) say.timer = setTimeout(() => { toast.hidden = true; }, 2500);  // errors stay
  }

  async function post(url, body, options = {}) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        keepalive: Boolean(options.keepalive),
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify(body),
      });
    } catch (err) {
      const error = new Error("the server could not be reached");
      error.retry = true;
      throw error;
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = data.detail || Object.values(data).flat().join("; ") || response.statusText;
      const error = new Error(`${response.status}: ${detail}`);
      error.retry = response.status >= 500 || response.status === 429 || response.status === 408;
      throw error;
    }
    return data;
  }

  const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

  function enqueue(save) {
    saves.push(save);
    if (save.row) save.row.pendingSaves = (save.row.pendingSaves || 0) + 1;
    showUnsaved();
    pump();
  }

  async function pump() {
    if (pumping) return;
    pumping = true;
    while (saves.length) {
      const save = saves[0];
      for (let attempt = 0; ; attempt += 1) {
        try {
          save.done(await post(save.url, save.body));
          break;
        } catch (err) {
          if (err.retry && attempt < RETRY_DELAYS.length) {
            if (save.row) setSaveState(save.row, `${save.what}: retrying (${err.message})`);
            await sleep(RETRY_DELAYS[attempt]);
            continue;
          }
          save.fail(err);
          break;
        }
      }
      saves.shift();
      if (save.row) save.row.pendingSaves -= 1;
      showUnsaved();
    }
    pumping = false;
    document.dispatchEvent(new Event("saves-drained"));
  }

  function showUnsaved() {
    const notes = [];
    if (saves.length) notes.push(`saving ${saves.length}…`);
    if (failed.size) {
      const names = Array.from(failed.entries()).map(([row, what]) => `${name(row)} ${what}`);
      notes.push(`NOT SAVED: ${names.join(", ")}: give ${failed.size > 1 ? "them" : "it"} again`);
    }
    unsavedBanner.textContent = notes.join(" · ");
    unsavedBanner.hidden = notes.length === 0;
    unsavedBanner.classList.toggle("error", failed.size > 0);
    queue.dataset.pending = String(saves.length);  // for tests: 0 once every save is answered
  }

  function drained() {
    return saves.length ? new Promise((resolve) => {
      document.addEventListener("saves-drained", resolve, { once: true });
    }) : Promise.resolve();
  }

  // --- rows -------------------------------------------------------------------------------------

  function name(row) { return row.querySelector(".tid").textContent; }
  function stamps(row) { return Array.from(row.querySelectorAll(".stamp")); }
  function rowById(id) { return rows.find((row) => row.dataset.tracklet === String(id)); }
  function isOpen(row) { return !row.classList.contains("taken"); }

  function setSaveState(row, text, isError) {
    const state = row.querySelector("[data-save]");
    if (state) {
      state.textContent = text;
      state.classList.toggle("error", Boolean(isError));
    }
  }

  function replaceRow(row, html) {
    // The row as the server shows it now (revealed after a verdict, blind again after an undo),
    // in place: the same element keeps the focus, its listeners and its place.
    const holder = document.createElement("template");
    holder.innerHTML = html.trim();
    const fresh = holder.content.firstElementChild;
    const focused = row.classList.contains("focused");
    const taken = row.classList.contains("taken");
    row.innerHTML = fresh.innerHTML;
    for (const attr of Array.from(fresh.attributes)) row.setAttribute(attr.name, attr.value);
    row.classList.toggle("focused", focused);
    if (taken && !row.dataset.verdict) row.classList.add("taken");
    stampListeners(row);
    if (focused) focusStamp(Math.min(stampIndex, stamps(row).length - 1), false);
  }

  function showPending(row, value) {
    row.dataset.verdict = value;
    row.querySelector("[data-mine]").textContent = `you: ${value}`;
    row.classList.toggle("judged-real", value === "real");
    row.classList.toggle("judged-bogus", value === "bogus");
    row.classList.add("saving");
    row.classList.remove("failed");
    setSaveState(row, "saving…");
  }

  // --- focus --------------------------------------------------------------------------------------

  function remember() {
    // the focused row and those after it, for coming back to this page (from a tracklet's page)
    const ids = current < rows.length ? rows.slice(current).map((r) => r.dataset.tracklet) : [];
    try { sessionStorage.setItem(focusKey, JSON.stringify(ids.slice(0, 200))); } catch (err) { /* private mode */ }
  }

  function focusRow(index) {
    if (!rows.length) return;
    index = Math.max(0, Math.min(rows.length, index));
    if (current >= 0 && current < rows.length) rows[current].classList.remove("focused");
    if (index !== current) { closeMenu(); hideDistribution(); }
    current = index;
    endOfPage.hidden = current < rows.length;
    if (current === rows.length) {
      endOfPage.scrollIntoView({ block: "nearest" });
      endOfPage.focus({ preventScroll: true });
      remember();
      return;
    }
    const row = rows[current];
    row.classList.add("focused");
    row.scrollIntoView({ block: "nearest" });
    focusStamp(Math.min(stampIndex, stamps(row).length - 1), false);
    remember();
  }

  function step(from, direction) {
    // the next open row (not taken by another reviewer) from `from` in `direction`
    for (let i = from + direction; i >= 0 && i < rows.length; i += direction) {
      if (isOpen(rows[i])) return i;
    }
    return direction > 0 ? rows.length : from;
  }

  function focusStamp(index, show) {
    if (current < 0 || current >= rows.length) return;
    const all = stamps(rows[current]);
    if (!all.length) return;
    stampIndex = Math.max(0, Math.min(all.length - 1, index));
    if (!all[stampIndex].classList.contains("focused")) closeMenu();  // the menu is for one stamp
    document.querySelectorAll(".stamp.focused").forEach((s) => s.classList.remove("focused"));
    all[stampIndex].classList.add("focused");
    all[stampIndex].focus({ preventScroll: true });
    if (show) showDistribution(all[stampIndex]);
  }

  // --- a stamp's class distribution: one popup at a time, on hover or on h / l ---------------------

  function hideDistribution() {
    document.querySelectorAll(".stamp.show-dist").forEach((s) => s.classList.remove("show-dist"));
  }

  function showDistribution(stamp) {
    hideDistribution();
    if (!stamp.dataset.dist) return;  // blind, or not scored
    if (!stamp.querySelector(".dist")) {
      const table = document.createElement("table");
      table.className = "dist";
      table.setAttribute("role", "tooltip");
      for (const item of stamp.dataset.dist.split(", ")) {
        const [cls, p] = item.split(" ");
        const tr = table.insertRow();
        tr.insertCell().textContent = cls;
        const bar = document.createElement("span");
        bar.className = "bar";
        bar.style.width = `${Math.round(Number(p) * 60)}px`;
        tr.insertCell().appendChild(bar);
        tr.insertCell().textContent = p;
      }
      stamp.appendChild(table);
    }
    stamp.classList.add("show-dist");
    placeDistribution(stamp);
  }

  function placeDistribution(stamp) {
    // Above the stamp (over the row already screened, not the next one), below it when the
    // window has no room above; right-aligned when it would run off the window's right edge.
    const table = stamp.querySelector(".dist");
    if (!table) return;
    const box = stamp.getBoundingClientRect();
    const height = table.offsetHeight || 150;
    const width = table.offsetWidth || 140;
    stamp.classList.toggle("dist-below", box.top - height < 0);
    stamp.classList.toggle("dist-end", box.left + width > document.documentElement.clientWidth);
  }

  // --- images: a hint while a stamp's display image is on its way -----------------------------

  function watchImage(img) {
    const figure = img.closest(".stamp");
    if (!figure) return;
    if (img.complete && img.naturalWidth) return;
    figure.classList.add("loading");
    img.addEventListener("load", () => figure.classList.remove("loading"), { once: true });
    img.addEventListener("error", () => {
      figure.classList.remove("loading");
      figure.classList.add("broken");
    }, { once: true });
  }

  function stampListeners(row) {
    row.querySelectorAll(".stamp").forEach((stamp) => {
      stamp.addEventListener("mouseenter", () => showDistribution(stamp));
      stamp.addEventListener("mouseleave", () => stamp.classList.remove("show-dist"));
      const img = stamp.querySelector("img");
      if (img) watchImage(img);
    });
  }

  // --- verdicts, classes, undo ----------------------------------------------------------------------

  function giveVerdict(value) {
    if (current < 0 || current >= rows.length) { say("End of this page: n for the next one."); return; }
    const row = rows[current];
    failed.delete(row);
    showPending(row, value);
    enqueue({
      row,
      what: value,
      url: `/tracklets/${row.dataset.tracklet}/verdict/`,
      body: { value, blind: row.dataset.blind === "1" },
      done: (data) => {
        if (row.pendingSaves <= 1) {  // the last of this row's saves: show the row as stored
          replaceRow(row, data.row);
          row.classList.remove("saving");
          setSaveState(row, "");
        }
        say(`${name(row)}: ${data.value}`);
      },
      fail: (err) => {
        failed.set(row, value);
        row.classList.remove("saving");
        row.classList.add("failed");
        setSaveState(row, `not saved: ${value} (${err.message}); press r or b again`, true);
        say(`Not saved: ${name(row)} ${value} (${err.message}).`, true);
      },
    });
    focusRow(step(current, 1));
  }

  function undo() {
    enqueue({
      row: null,
      what: "undo",
      url: `/nights/${night}/undo/`,
      body: {},
      done: (data) => {
        const row = rowById(data.tracklet);
        if (row) {
          failed.delete(row);
          replaceRow(row, data.row);
          row.classList.remove("judged-real", "judged-bogus", "failed", "taken");
          focusRow(rows.indexOf(row));
        }
        say(`${data.survey_id}: verdict withdrawn${row ? "" : " (it is back in the to-review queue)"}`);
      },
      fail: (err) => { say(`Undo not saved (${err.message}).`, true); },
    });
  }

  // A stamp's label, its class name isolated in a <bdi> (as the server renders it), so that a
  // right-to-left name or a direction control in it cannot reorder the caption.
  function showLabel(element, cls, suffix) {
    const name = document.createElement("bdi");
    name.textContent = cls;
    element.replaceChildren("→ ", name, suffix || "");
  }

  function setClass(cls) {
    closeMenu();
    if (current < 0 || current >= rows.length || !cls) return;
    const row = rows[current];
    const index = stampIndex;
    const stamp = stamps(row)[index];
    if (!stamp) return;
    showLabel(stamp.querySelector("[data-label]"), cls, " …");
    enqueue({
      row,
      what: `stamp ${index + 1} ${cls}`,
      url: `/api/v1/detections/${stamp.dataset.detection}/label/`,
      body: { stamp_class: cls, blind: row.dataset.blind === "1" },
      done: () => {
        const label = row.querySelector(`.stamp[data-detection="${stamp.dataset.detection}"] [data-label]`);
        if (label) showLabel(label, cls);
        say(`Stamp ${index + 1} is ${cls}`);
      },
      fail: (err) => {
        failed.set(row, `stamp ${index + 1} ${cls}`);
        stamp.querySelector("[data-label]").textContent = "";
        setSaveState(row, `class not saved (${err.message})`, true);
        say(`Class not saved (${err.message}).`, true);
      },
    });
  }

  function closeMenu() { menu.hidden = true; }

  function openMenu() {
    // Under the focused stamp, or above it where the window has no room below; always inside
    // the window (the menu scrolls itself if it is taller than the window).
    if (current < 0 || current >= rows.length) return;
    const stamp = stamps(rows[current])[stampIndex];
    if (!stamp) return;
    hideDistribution();
    menu.hidden = false;
    const box = stamp.getBoundingClientRect();
    const viewWidth = document.documentElement.clientWidth;
    const viewHeight = document.documentElement.clientHeight;
    const margin = 8;
    const height = menu.offsetHeight;
    const width = menu.offsetWidth;
    let top = box.bottom;
    if (top + height > viewHeight - margin) top = box.top - height;
    top = Math.max(margin, Math.min(top, viewHeight - margin - height));
    const left = Math.max(margin, Math.min(box.left, viewWidth - margin - width));
    menu.style.left = `${left + window.scrollX}px`;
    menu.style.top = `${top + window.scrollY}px`;
  }

  // --- leaving the page -------------------------------------------------------------------------------

  async function leave(href, { keep = false } = {}) {
    if (leaving || !href) return;
    leaving = true;
    if (saves.length) say(`Saving ${saves.length} before leaving…`);
    await drained();
    if (failed.size) {
      leaving = false;
      say("Some verdicts were not saved (see the banner): give them again first.", true);
      return;
    }
    keepClaims = keep;
    location.href = href;
  }

  function page(which) {
    const link = document.querySelector(`[data-page="${which}"]`);
    if (link) leave(link.href);
    else if (which === "next") say("This is the last page.");
    else if (which === "prev") say("This is the first page.");
  }

  window.addEventListener("beforeunload", (event) => {
    if (saves.length || failed.size) {
      event.preventDefault();
      event.returnValue = "";
    }
  });

  // --- other reviewers: short polling of claims and verdicts ------------------------------------

  function openIds() {
    return rows.filter((row) => !row.dataset.verdict).map((row) => Number(row.dataset.tracklet));
  }

  async function poll() {
    if (!screening || leaving) return;
    try {
      const data = await post(`/nights/${night}/presence/`, { tracklets: openIds() });
      for (const row of rows) {
        if (row.dataset.verdict) continue;
        const text = data.taken[row.dataset.tracklet] || "";
        row.classList.toggle("taken", Boolean(text));
        row.querySelector("[data-taken]").textContent = text;
      }
      queue.dataset.polled = String(Number(queue.dataset.polled || 0) + 1);  // for tests
    } catch (err) { /* the next poll tries again; saves report their own errors */ }
  }

  function release() {
    if (!screening || keepClaims) return;
    post(`/nights/${night}/presence/`, { tracklets: openIds(), release: true }, { keepalive: true })
      .catch(() => {});
  }

  window.addEventListener("pagehide", release);
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) { leaving = false; keepClaims = false; poll(); }
  });

  function prepareNext() {
    // the next page's display images, drawn while this page is screened
    if (!queue.dataset.nextCursor) return;
    post(`/nights/${night}/prepare/`, {
      after: queue.dataset.nextCursor,
      query: queue.dataset.query,
      per_page: Number(queue.dataset.perPage) || 50,
    }).catch(() => {});
  }

  // --- keys and clicks -------------------------------------------------------------------------------

  rows.forEach((row, index) => {
    row.addEventListener("click", (event) => {
      if (leaving) return;
      const button = event.target.closest("button[data-action]");
      if (current !== index) focusRow(index);
      const stamp = event.target.closest(".stamp");
      if (stamp) focusStamp(stamps(row).indexOf(stamp), false);
      if (button) giveVerdict(button.dataset.action);
    });
    stampListeners(row);
  });
  window.addEventListener("scroll", () => {
    const shown = document.querySelector(".stamp.show-dist");
    if (shown) placeDistribution(shown);
  }, { passive: true });
  menu.addEventListener("click", (event) => {
    const item = event.target.closest("[data-class]");
    if (item) setClass(item.dataset.class);
  });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest("input, select, textarea")) return;
    const key = event.key;
    if (leaving) {  // the page is going: no key may land on it, and the reviewer is told
      event.preventDefault();
      if (/^[rbu1-9]$/.test(key)) say(`Leaving this page: "${key}" was not used; give it on the next.`, true);
      return;
    }
    if (key === "Escape") { help.hidden = true; closeMenu(); hideDistribution(); return; }
    if (key === "?") { help.hidden = !help.hidden; return; }
    if (/^[1-9]$/.test(key)) {
      const cls = classes[Number(key) - 1];
      if (cls) setClass(cls);
      return;
    }
    const row = current >= 0 && current < rows.length ? rows[current] : null;
    const actions = {
      j: () => { const next = step(current, 1); if (next < rows.length) focusRow(next); },
      k: () => focusRow(current >= rows.length ? step(rows.length, -1) : step(current, -1)),
      r: () => giveVerdict("real"),
      b: () => giveVerdict("bogus"),
      u: () => undo(),
      o: () => row && leave(row.dataset.detail, { keep: true }),
      Enter: () => row && leave(row.dataset.detail, { keep: true }),
      h: () => row && focusStamp(stampIndex - 1, true),
      l: () => row && focusStamp(stampIndex + 1, true),
      c: () => openMenu(),
      n: () => page("next"),
      p: () => page("prev"),
    };
    if (actions[key]) {
      event.preventDefault();
      actions[key]();
    }
  });

  // Back from a tracklet's page (or a reload): the focus where it was, or on the first row after
  // it still on the page; else on the first open row.
  let start = 0;
  try {
    const remembered = JSON.parse(sessionStorage.getItem(focusKey) || "[]");
    const found = remembered.map((id) => rows.findIndex((r) => r.dataset.tracklet === id))
      .find((i) => i >= 0);
    if (found !== undefined) start = found;
    else if (rows.length && !isOpen(rows[0])) start = step(0, 1);
  } catch (err) { /* no storage */ }
  focusRow(start);
  showUnsaved();
  if (screening) setInterval(poll, POLL_MS);
  if ("requestIdleCallback" in window) requestIdleCallback(prepareNext, { timeout: 2000 });
  else setTimeout(prepareNext, 500);
  queue.dataset.ready = "1";  // for tests: the keys work from now on
})();
