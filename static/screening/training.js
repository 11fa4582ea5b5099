// Live progress of a training run on the models page: poll the API, update the bar and log,
// reload when the run has finished (succeeded or failed).
(function () {
  const box = document.querySelector(".run-live");
  if (!box) return;
  const url = box.dataset.url;
  async function poll() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const run = await response.json();
      box.querySelector(".run-status").textContent = run.status;
      box.querySelector(".run-step").textContent = run.step;
      box.querySelector(".run-progress").value = run.progress;
      box.querySelector(".run-percent").textContent = `${Math.round(run.progress * 100)}%`;
      box.querySelector(".run-log").textContent = run.log;
      if (run.status === "succeeded" || run.status === "failed") {
        window.location.reload();
        return;
      }
    } catch (error) {
      box.querySelector(".run-step").textContent = `progress unavailable (${error.message}); retrying`;
    }
    setTimeout(poll, 2000);
  }
  setTimeout(poll, 2000);
})();
