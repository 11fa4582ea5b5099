"""The planet-glare loop of the README, done in Chromium against a running `./run demo`, timed.

    ./run demo &                      # in a clone; wait for "open http://127.0.0.1:8000/"
    .venv/bin/python bench/glare_demo_browser.py [--url http://127.0.0.1:8000] [--labels 50]

As the README's walkthrough: the admin adds GLARE in the Django admin; in the planet-glare
night's queue (highest score first), glare tracklets get GLARE on each stamp (`h`/`l`, `9`) and
`b`, other rows `r` or `b` (the simulator's truth.jsonl beside the demo night stands for a
reviewer's eyes); then Start retraining on the Models page, wait for the candidate, Activate on
its page, wait for the rescoring; then count glare tracklets passing on the night before and
after. Prints the wall time of each step. Uses Debian's chromium, headless. Run it on a fresh
demo: it screens the planet-glare night's queue, so a second run finds less (or nothing) to
review; it says so and stops.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


RUN_IDS = "rows => rows.map(r => r.dataset.run)"


def logins() -> dict[str, str]:
    text = (ROOT / "var" / "demo-logins.txt").read_text()
    return dict(re.findall(r"login: (\w+) / (\S+)", text))


def glare_night() -> tuple[str, dict[str, dict]]:
    folder = next(ROOT.glob("var/demo-night-*-planets*"))
    night = re.match(r"demo-night-(\d{4}-\d\d-\d\d)-", folder.name).group(1)
    rows = (json.loads(line) for line in (folder / "truth.jsonl").read_text().splitlines())
    return night, {r["tracklet"]: r for r in rows}


def passing(night: str, truth: dict[str, dict], unreviewed: bool = False) -> dict[str, float]:
    """Glare tracklets and real tracklets at or above the active model's threshold (SQLite);
    `unreviewed`: only those nobody has judged (the ones a promotion rescores)."""
    db = sqlite3.connect(ROOT / "var" / "db.sqlite3")
    ((version, threshold),) = db.execute(
        "select version, threshold from screening_modelversion where is_active"
    )
    rows = db.execute(
        "select t.survey_id, t.score from screening_tracklet t join screening_night n "
        "on t.night_id = n.id where n.date = ? and (? = 0 or t.status != 'reviewed')",
        (night, int(unreviewed)),
    ).fetchall()
    glare = [
        s >= threshold
        for sid, s in rows
        if s is not None
        and not truth[sid]["real"]
        and truth[sid]["latents"].get("correlated_kind") == "glare"
    ]
    real = [s >= threshold for sid, s in rows if s is not None and truth[sid]["real"]]
    return {
        "model": version,
        "glare": len(glare),
        "glare_passing": sum(glare) / len(glare),
        "real": len(real),
        "real_passing": sum(real) / max(len(real), 1),
    }


def main() -> None:
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM_ARGS, chromium_path

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--labels", type=int, default=50, help="GLARE stamp labels to give")
    parser.add_argument("--verdicts", type=int, default=60, help="rows to give a verdict")
    parser.add_argument("--screenshots", type=Path, default=None)
    args = parser.parse_args()
    night, truth = glare_night()
    who = logins()
    before = passing(night, truth)
    print(f"before: {before}")
    times: dict[str, float] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{args.url}/accounts/login/")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", who["admin"])
        page.click("button[type=submit]")
        page.wait_for_load_state()

        t0 = time.perf_counter()
        page.goto(f"{args.url}/admin/screening/stampclass/add/")
        page.fill("input[name=name]", "GLARE")
        if page.locator("input[name=description], textarea[name=description]").count():
            page.fill("[name=description]", "planet glare: knots on horizontal bands")
        page.click("input[name=_save]")
        # added, or there from an earlier run on this demo
        page.wait_for_selector(".messagelist .success, .errorlist")
        times["1 add GLARE in the admin"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        page.goto(f"{args.url}/nights/{night}/")
        page.wait_for_load_state()
        if not page.locator(".qrow").count():
            sys.exit(
                f"night {night} has nothing left for admin to review: run this on a fresh "
                "./run demo (an earlier run screened its queue)"
            )
        labels = verdicts = 0
        while verdicts < args.verdicts or labels < args.labels:
            focused = page.locator(".qrow.focused .tid")
            if not focused.count():
                page.keyboard.press("j")
            if not focused.count():  # an empty page: this demo's queue was screened before
                print(f"the queue ends here: {labels} labels, {verdicts} verdicts given")
                break
            sid = focused.inner_text()
            row = truth[sid]
            if (
                not row["real"]
                and row["latents"].get("correlated_kind") == "glare"
                and labels < args.labels
            ):
                # the stamp focus keeps its place from row to row: back to the first stamp
                for _ in row["classes"]:
                    page.keyboard.press("h")
                for i, cls in enumerate(row["classes"]):
                    if i:
                        page.keyboard.press("l")
                    if cls == "GLARE" and labels < args.labels:
                        page.keyboard.press("9")
                        # saved: the label reads "→ GLARE" (no " …"); its name is in a <bdi>,
                        # which Playwright's :text-is() does not see through
                        page.wait_for_function(
                            "() => document.querySelector('.qrow.focused .stamp.focused "
                            "[data-label]')?.textContent === '→ GLARE'"
                        )
                        labels += 1
            if verdicts < args.verdicts or labels < args.labels:
                key = "r" if row["real"] else "b"
                current = page.locator(".qrow.focused").get_attribute("data-tracklet")
                page.keyboard.press(key)
                page.wait_for_selector(
                    f".qrow[data-tracklet='{current}'][data-verdict]:not([data-verdict=''])"
                )
                verdicts += 1
            if page.locator(".qrow").last.get_attribute("class").find("focused") >= 0:
                if not page.locator("[data-page='next']").count():
                    print(f"the queue ends here: {labels} labels, {verdicts} verdicts given")
                    break
                # next page: keys given while the page is left are refused (and said so), so
                # the next one waits for the new page, not the old one's focused row
                with page.expect_navigation():
                    page.keyboard.press("n")
                page.wait_for_selector(".qrow.focused")
        times[f"2 label {labels} glare stamps, {verdicts} verdicts (scripted keys)"] = (
            time.perf_counter() - t0
        )

        t0 = time.perf_counter()
        page.goto(f"{args.url}/models/")
        runs_before = {r for r in page.eval_on_selector_all("tr[data-run]", RUN_IDS) if r}
        page.click("#start-training")
        page.wait_for_selector(".run-live")
        # this run's row (newest first), not one an earlier run on the same demo left
        page.wait_for_function(
            "before => [...document.querySelectorAll('tr[data-run].status-succeeded,"
            " tr[data-run].status-failed')].some(r => !before.includes(r.dataset.run))",
            arg=sorted(runs_before),
            timeout=1_800_000,
        )
        times["3 retrain (Start retraining to candidate)"] = time.perf_counter() - t0
        run = page.locator("tr[data-run]").first
        if "status-failed" in (run.get_attribute("class") or ""):
            sys.exit("the training run failed: see the Models page")

        t0 = time.perf_counter()
        link = run.locator("a[href^='/models/']").first
        link.click()
        page.wait_for_selector("#promotion")
        changes = page.locator("#changes tbody tr").all_inner_texts()
        rule = page.locator("#promotion").inner_text()
        if args.screenshots:
            args.screenshots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.screenshots / "candidate.png"), full_page=True)
        if page.locator("input[name=force]").count():
            print(f"the rule refuses: {rule}; forcing, to measure")
            page.check("input[name=force]")
        page.click("#activate")
        message = page.wait_for_selector(".messages li").inner_text()
        while True:  # the rescoring of unreviewed tracklets
            after = passing(night, truth, unreviewed=True)
            if after["model"] != before["model"]:
                db = sqlite3.connect(ROOT / "var" / "db.sqlite3")
                ((left,),) = db.execute(
                    "select count(*) from screening_tracklet t join screening_modelversion m "
                    "on t.model_version_id = m.id where not m.is_active and t.status != "
                    "'reviewed'"
                )
                if not left:
                    break
            time.sleep(2)
        times["4 activate and rescore"] = time.perf_counter() - t0
        page.goto(f"{args.url}/nights/{night}/")
        page.wait_for_selector(".qrow")
        if args.screenshots:
            page.screenshot(path=str(args.screenshots / "queue-after.png"), full_page=True)
        browser.close()
    print(f"promotion: {rule}\n{message}")
    print("what changed:")
    for line in changes:
        print("  " + line.replace("\t", " | "))
    print(f"after: {after}")
    print("after: the tracklets nobody judged (rescored by the promoted model)")
    print(
        f"glare tracklets passing on the planet-glare night: {before['glare_passing']:.1%} -> "
        f"{after['glare_passing']:.1%} (of {after['glare']}); real {before['real_passing']:.1%}"
        f" -> {after['real_passing']:.1%} (of {after['real']})"
    )
    for step, seconds in times.items():
        print(f"  {step:60s} {seconds:7.1f} s")


if __name__ == "__main__":
    main()
