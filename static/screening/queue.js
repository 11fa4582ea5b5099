// The screening queue, keyboard first: verdicts and stamp classes are saved without a reload.
(() => {
  "use strict";
  const rows = Array.from(document.querySelectorAll(".qrow"));
  const classes = JSON.parse(document.getElementById("stamp-classes").textContent).map((c) => c[0]);
  const toast = document.getElementById("toast");
  const help = document.getElementById("help");
  const menu = document.getElementById("class-menu");
  const undoStack = [];
  let current = -1;
  let stampIndex = 0;

  function csrfToken() {
    const cookie = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
    return cookie ? decodeURIComponent(cookie.split("=")[1]) : "";
  }

  function say(text, isError) {
    toast.textContent = text;
    toast.classList.toggle("error", Boolean(isError));
    toast.hidden = false;
    clearTimeout(say.timer);
    if (!isError) say.timer = setTimeout(() => { toast.hidden = true; }, 2500);
  }

  async function post(url, body) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify(body),
      });
    } catch (err) {
      throw new Error("the server could not be reached");
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = data.detail || Object.values(data).flat().join("; ") || response.statusText;
      throw new Error(`${response.status}: ${detail}`);
    }
    return data;
  }

  function stamps(row) { return Array.from(row.querySelectorAll(".stamp")); }

  function closeMenu() { menu.hidden = true; }

  function focusRow(index) {
    if (!rows.length) return;
    index = Math.max(0, Math.min(rows.length - 1, index));
    if (current >= 0) rows[current].classList.remove("focused");
    if (index !== current) closeMenu();
    current = index;
    const row = rows[current];
    row.classList.add("focused");
    row.scrollIntoView({ block: "nearest" });
    focusStamp(Math.min(stampIndex, stamps(row).length - 1));
  }

  function showDistribution(stamp) {
    // The full class distribution of the focused (or hovered) stamp, built when first needed.
    if (stamp.querySelector(".dist") || !stamp.dataset.dist) return;
    const table = document.createElement("table");
    table.className = "dist";
    table.setAttribute("role", "tooltip");
    for (const item of stamp.dataset.dist.split(", ")) {
      const [name, p] = item.split(" ");
      const tr = table.insertRow();
      tr.insertCell().textContent = name;
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = `${Math.round(Number(p) * 60)}px`;
      tr.insertCell().appendChild(bar);
      tr.insertCell().textContent = p;
    }
    stamp.appendChild(table);
  }

  function placeDistribution(stamp) {
    // Above the stamp (over the row already screened, not the next one), below it only when the
    // window has no room above; right-aligned when it would run off the window's right edge.
    const table = stamp.querySelector(".dist");
    if (!table) return;
    const box = stamp.getBoundingClientRect();
    const height = table.offsetHeight || 150;
    const width = table.offsetWidth || 140;
    stamp.classList.toggle("dist-below", box.top - height < 0);
    stamp.classList.toggle("dist-end", box.left + width > document.documentElement.clientWidth);
  }

  function focusStamp(index) {
    const all = stamps(rows[current]);
    if (!all.length) return;
    stampIndex = Math.max(0, Math.min(all.length - 1, index));
    if (!all[stampIndex].classList.contains("focused")) closeMenu();  // the menu is for one stamp
    document.querySelectorAll(".stamp.focused").forEach((s) => s.classList.remove("focused"));
    all[stampIndex].classList.add("focused");
    showDistribution(all[stampIndex]);
    placeDistribution(all[stampIndex]);
    all[stampIndex].focus({ preventScroll: true });
  }

  function showVerdict(row, value) {
    row.dataset.verdict = value || "";
    row.querySelector("[data-mine]").textContent = value ? `you: ${value}` : "";
    row.classList.toggle("judged-real", value === "real");
    row.classList.toggle("judged-bogus", value === "bogus");
  }

  async function giveVerdict(row, value) {
    const name = row.querySelector(".tid").textContent;
    row.classList.add("saving");
    try {
      await post(`/api/v1/tracklets/${row.dataset.tracklet}/verdict/`, { value });
      row.classList.remove("failed");
      showVerdict(row, value);
      undoStack.push(row);
      say(`${name}: ${value}`);
      if (rows[current] === row) focusRow(current + 1);
    } catch (err) {
      row.classList.add("failed");
      say(`Not saved: ${name} ${value} (${err.message}). Press the key again to retry.`, true);
    } finally {
      row.classList.remove("saving");
    }
  }

  async function undo() {
    const row = undoStack.pop();
    if (!row) { say("Nothing to undo."); return; }
    const name = row.querySelector(".tid").textContent;
    try {
      await post(`/api/v1/tracklets/${row.dataset.tracklet}/verdict/`, { value: "withdrawn" });
      showVerdict(row, "");
      focusRow(rows.indexOf(row));
      say(`${name}: verdict withdrawn`);
    } catch (err) {
      undoStack.push(row);
      say(`Undo not saved for ${name} (${err.message}).`, true);
    }
  }

  async function setClass(name) {
    closeMenu();
    if (current < 0 || !name) return;
    const stamp = stamps(rows[current])[stampIndex];
    if (!stamp) return;
    try {
      await post(`/api/v1/detections/${stamp.dataset.detection}/label/`, { stamp_class: name });
      stamp.querySelector("[data-label]").textContent = `→ ${name}`;
      say(`Stamp ${stampIndex + 1} is ${name}`);
    } catch (err) {
      say(`Class not saved (${err.message}).`, true);
    }
  }

  function openMenu() {
    // Under the focused stamp, or above it where the window has no room below; always inside
    // the window (the menu scrolls itself if it is taller than the window).
    if (current < 0) return;
    const stamp = stamps(rows[current])[stampIndex];
    if (!stamp) return;
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

  function page(which) {
    const link = document.querySelector(`[data-page="${which}"]`);
    if (link) location.href = link.href;
  }

  rows.forEach((row, index) => {
    row.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (current !== index) focusRow(index);
      const stamp = event.target.closest(".stamp");
      if (stamp) focusStamp(stamps(row).indexOf(stamp));
      if (button) giveVerdict(row, button.dataset.action);
    });
  });
  document.querySelectorAll(".stamp").forEach((stamp) => {
    stamp.addEventListener("mouseenter", () => { showDistribution(stamp); placeDistribution(stamp); });
  });
  window.addEventListener("scroll", () => {
    const focused = document.querySelector(".stamp.focused");
    if (focused) placeDistribution(focused);
  }, { passive: true });
  menu.addEventListener("click", (event) => {
    const item = event.target.closest("[data-class]");
    if (item) setClass(item.dataset.class);
  });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest("input, select, textarea")) return;
    const key = event.key;
    if (key === "Escape") { help.hidden = true; closeMenu(); return; }
    if (key === "?") { help.hidden = !help.hidden; return; }
    if (/^[1-9]$/.test(key)) {
      const name = classes[Number(key) - 1];
      if (name) setClass(name);
      return;
    }
    const row = rows[current];
    const actions = {
      j: () => focusRow(current + 1),
      k: () => focusRow(current - 1),
      r: () => row && giveVerdict(row, "real"),
      b: () => row && giveVerdict(row, "bogus"),
      u: () => undo(),
      o: () => row && (location.href = row.dataset.detail),
      Enter: () => row && (location.href = row.dataset.detail),
      h: () => row && focusStamp(stampIndex - 1),
      l: () => row && focusStamp(stampIndex + 1),
      c: () => openMenu(),
      n: () => page("next"),
      p: () => page("prev"),
    };
    if (actions[key]) {
      event.preventDefault();
      actions[key]();
    }
  });

  focusRow(0);
  document.getElementById("queue").dataset.ready = "1";  // for tests: the keys work from now on
})();
