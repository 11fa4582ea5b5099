"""Audited auto-rejection against the simulator's truth, with a threshold set too high on purpose.

Run on PostgreSQL and Redis with `./run bench bench/audit.py`. Steps, through the services the
pages and API use:

1. register the baseline, simulate --nights nights (kept under var/bench/), ingest them as
   bundles and score them; then raise the model's threshold on purpose, to where the simulator's
   truth says about --lost-rate (default 6%, three times the 2% target) of the auto-rejected
   tracklets are real, and let the product (re)draw each night's audit sample (2%, at least
   --min-audits: 200 here, an operator auditing a suspect model hard; at a 2% target one night
   needs 183 judged audits before it can conclude, which the default of 50 a night reaches over
   the rolling window);
2. scripted reviewers (the simulator's truth stands for their eyes) screen each night's
   to-review queue through the reviewer API, blind, audit rows among the others, and give
   verdicts;
3. the night summary API must show the alarm: the estimate's upper bound above the 2% target;
4. coverage: 200 simulated nights drawn from the scored tracklets (each a resample of --night-size
   tracklets with its own audit secret, so its own keyed sample), all audits judged: in how many
   does the estimate's 95% interval contain the night's true lost rate (the share of its
   auto-rejected tracklets that are real, known from the simulator)? Target: >= 95%.

Also writes docs/results/audit/estimate_over_nights.png (the model page's plot) and coverage.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "screening.settings")


def truth(folder: Path) -> dict[str, bool]:
    rows = (json.loads(line) for line in (folder / "truth.jsonl").read_text().splitlines())
    return {row["tracklet"]: bool(row["real"]) for row in rows}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nights", type=int, default=4)
    parser.add_argument("--tracklets", type=int, default=1500, help="per simulated night")
    parser.add_argument("--real-fraction", type=float, default=0.2)
    parser.add_argument("--lost-rate", type=float, default=0.06)
    parser.add_argument("--min-audits", type=int, default=200)
    parser.add_argument("--coverage-nights", type=int, default=200)
    parser.add_argument("--night-size", type=int, default=3000)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection
    from rest_framework.test import APIClient

    from bench.scoring_core import checkpoint_path
    from classifier.bundle import simulate_night
    from screening.ingest.bundles import bundle_ingest
    from screening.models import ModelVersion, Night, Tracklet
    from screening.registry.plots import audit_figure
    from screening.registry.versions import model_activate_and_rescore, model_register
    from screening.review import audit
    from screening.scoring.worker import tracklets_score_pending

    if connection.vendor != "postgresql":
        sys.exit("run it with ./run bench: it needs PostgreSQL")
    call_command("migrate", verbosity=0)
    settings.INFERENCE_DEVICE = "cpu"
    settings.AUDIT_MIN_PER_NIGHT = args.min_audits
    print(f"machine: {platform.node()}, {os.cpu_count()} cores; database {connection.vendor}")
    print(
        f"audit settings: rate {settings.AUDIT_RATE}, at least {settings.AUDIT_MIN_PER_NIGHT} a "
        f"night, target {settings.AUDIT_TARGET_LOSS:.1%}, confidence {settings.AUDIT_CONFIDENCE}"
    )
    model = model_register(path=checkpoint_path(None))
    base_threshold = model.threshold
    model_activate_and_rescore(version=model.version)

    known: dict[str, dict[str, bool]] = {}
    t0 = time.perf_counter()
    for i in range(args.nights):
        night = f"2026-09-{i + 1:02d}"
        folder = ROOT / "var" / "bench" / f"audit-{i}-{args.tracklets}-{args.real_fraction}"
        if not (folder / "manifest.jsonl").exists():
            simulate_night(
                folder,
                seed=300 + i,
                night=night,
                n_tracklets=args.tracklets,
                real_fraction=args.real_fraction,
            )
        known[night] = truth(folder)
        report = bundle_ingest(path=folder)
        assert report.summary["rejected"] == 0, report.summary
    tracklets_score_pending()
    print(f"simulated/ingested/scored {args.nights} nights in {time.perf_counter() - t0:.0f} s")

    # The threshold set too high on purpose: the one above which the share of real tracklets
    # among the auto-rejected reaches --lost-rate (by the simulator's truth).
    scored = sorted(
        (score, known[d.isoformat()][s])
        for d, s, score in Tracklet.objects.filter(model_version=model).values_list(
            "night__date", "survey_id", "score"
        )
    )
    reals = np.cumsum([r for _, r in scored])
    share = reals / np.arange(1, len(scored) + 1)
    below = np.flatnonzero(share < args.lost_rate)
    at = min(int(below[-1]) + 1 if len(below) else 0, len(scored) - 1)
    threshold = float(scored[at][0]) + 1e-6
    ModelVersion.objects.filter(pk=model.pk).update(threshold=threshold)
    model.refresh_from_db()
    for night in Night.objects.filter(date__in=list(known)):
        audit.audit_draw(night=night, model=model)
    print(
        f"threshold raised on purpose: {base_threshold:.4f} -> {model.threshold:.6f} "
        f"(auto-rejects {at + 1} of {len(scored)} tracklets, {reals[at]} of them real)"
    )

    # Reviewers screen the to-review queue through the API, blind; truth for their eyes.
    reviewer, _ = User.objects.get_or_create(username="audit-reviewer")
    reviewer.groups.add(Group.objects.get(name="reviewer"))
    client = APIClient(SERVER_NAME="localhost")
    client.force_authenticate(reviewer)
    estimates = []
    for night, answers in known.items():
        judged = blind = 0
        while True:
            body = client.get(f"/api/v1/nights/{night}/queue/").json()
            if not body["rows"]:
                break
            for row in body["rows"]:
                blind += row["score"] is None
                value = "real" if answers[row["tracklet"]] else "bogus"
                response = client.post(
                    f"/api/v1/tracklets/{row['id']}/verdict/", {"value": value}, format="json"
                )
                assert response.status_code == 201, response.content
                judged += 1
        summary = client.get(f"/api/v1/nights/{night}/audit/").json()
        e = summary["models"][0]
        rows = Tracklet.objects.filter(
            night__date=night, model_version=model, score__lt=model.threshold
        )
        lost = [answers[t] for t in rows.values_list("survey_id", flat=True)]
        true_rate = sum(lost) / len(lost)
        inside = e["low"] <= true_rate <= e["high"]
        print(
            f"night {night}: screened {judged} rows (all blind: {blind == judged}); "
            f"{e['real']} real in {e['judged']} audits of {e['rejected']} auto-rejected -> "
            f"lost-real rate {e['rate']:.2%} [{e['low']:.2%}, {e['high']:.2%}], true "
            f"{true_rate:.2%} ({'inside' if inside else 'OUTSIDE'}); status {e['status']}; "
            f"API alarm {summary['alarm']}"
        )
        estimates.append((night, audit.night_model_estimate(Night.objects.get(date=night), model)))
    fired = sum(1 for _, e in estimates if e.status == "alarm")
    print(f"alarm fired on {fired} of {len(estimates)} nights")
    body = client.get(f"/api/v1/models/{model.version}/audit/").json()
    print(f"model API: alarm {body['alarm']}; {json.dumps(body, default=str)[:600]}")

    # Coverage over simulated nights drawn from the scored tracklets.
    rows = list(
        Tracklet.objects.filter(model_version=model).values_list(
            "night__date", "survey_id", "score"
        )
    )
    real = np.array([known[d.isoformat()][s] for d, s, _ in rows])
    rejected = np.array([score < model.threshold for _, _, score in rows])
    names = [f"{d}/{s}" for d, s, _ in rows]
    rng = np.random.default_rng(2026)
    covered, rates, uppers = 0, [], []
    for k in range(args.coverage_nights):
        settings.AUDIT_SECRET = f"coverage-night-{k}"
        pick = rng.choice(len(rows), size=args.night_size, replace=True)
        pool = [i for i in pick if rejected[i]]
        keys = {
            j: audit.audit_key(night=f"n{k}", version=model.version, survey_id=f"{names[i]}#{j}")
            for j, i in enumerate(pool)
        }
        sample = audit.sample_keys(
            keys, rate=settings.AUDIT_RATE, minimum=settings.AUDIT_MIN_PER_NIGHT
        )
        n_real = int(sum(real[pool[j]] for j in sample))
        e = audit.estimate(rejected=len(pool), drawn=len(sample), judged=len(sample), real=n_real)
        true_rate = float(np.mean([real[i] for i in pool]))
        covered += e.low <= true_rate <= e.high
        rates.append(true_rate)
        uppers.append(e.high)
    share = covered / args.coverage_nights
    print(
        f"coverage: the {settings.AUDIT_CONFIDENCE:.0%} interval contains the true lost rate "
        f"on {covered} of {args.coverage_nights} simulated nights ({share:.1%}; target >= 95%); "
        f"true lost rate {np.mean(rates):.2%} on average; the alarm (upper bound > "
        f"{settings.AUDIT_TARGET_LOSS:.0%}) fires on "
        f"{sum(u > settings.AUDIT_TARGET_LOSS for u in uppers)} of them"
    )

    out = ROOT / "docs" / "results" / "audit"
    out.mkdir(parents=True, exist_ok=True)
    figure = audit_figure(
        [(n, e) for n, e in estimates],
        settings.AUDIT_TARGET_LOSS,
        f"Threshold {model.threshold:.4f} (too high on purpose): lost-real estimate per night",
    )
    figure.tight_layout()
    figure.savefig(out / "estimate_over_nights.png")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.2), dpi=100)
    axes = fig.add_subplot()
    order = np.argsort(rates)
    axes.plot(np.array(rates)[order] * 100, label="true lost rate", color="#333")
    axes.plot(np.array(uppers)[order] * 100, label="upper bound of the estimate", color="#d9534f")
    axes.axhline(100 * settings.AUDIT_TARGET_LOSS, linestyle="--", color="#888", label="target")
    axes.set_xlabel("simulated night (sorted by its true lost rate)")
    axes.set_ylabel("%")
    axes.legend(fontsize=8)
    axes.set_title(f"{args.coverage_nights} simulated nights: coverage {share:.1%}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "coverage.png")
    print(f"plots: {out / 'estimate_over_nights.png'}, {out / 'coverage.png'}")


if __name__ == "__main__":
    main()
