"""The screening web app: Django project and app in one package, grouped by the data's path.

    ingest/    tracklets in (REST, bundles, uploads), validated whole, written in one transaction
    scoring/   workers claim unscored tracklets, run the model, store probabilities and scores
    review/    the queue, blind screening, routing (audits, gold, second screening), verdicts
    reports/   MPC reports (ADES), label export, night summaries, reviewer quality
    registry/  model versions, retraining jobs, promotion (which queues rescoring)
    web/ api/  the pages and the REST API: parse the request, call one service, answer
    ops/       worker commands, heartbeats, metrics, the demo's settings, roles

Each stage that queues work has a `tasks.py`; tasks keep their pinned names (`queueing`).
docs/code-map.md has the module map.
"""

from __future__ import annotations

from screening.celery import app as celery_app

__all__ = ("celery_app",)
