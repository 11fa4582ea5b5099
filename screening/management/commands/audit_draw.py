"""`manage.py audit_draw`: draw the audit samples of auto-rejection again, or verify them."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from screening.models import ModelVersion, Night, QueueAssignment, Tracklet
from screening.nights import night_argument
from screening.review.audit import audit_draw, audit_key, night_estimates


class Command(BaseCommand):
    help = (
        "Draw (top up) every night's audit sample for the models that scored it, print the "
        "estimates; --verify re-derives each drawn row's key from the secret and checks it."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--night", type=night_argument, help="YYYY-MM-DD (default: every night)"
        )
        parser.add_argument("--verify", action="store_true")

    def handle(self, *args, **options) -> None:
        nights = Night.objects.order_by("date")
        if options["night"]:
            nights = nights.filter(date=options["night"])
        missing = Tracklet.objects.filter(model_version__isnull=False, audit_key__isnull=True)
        rows = list(missing.values_list("pk", "night__date", "model_version__version", "survey_id"))
        Tracklet.objects.bulk_update(
            [
                Tracklet(pk=pk, audit_key=audit_key(night=d.isoformat(), version=v, survey_id=s))
                for pk, d, v, s in rows
            ],
            ["audit_key"],
            batch_size=1000,
        )
        if rows:
            self.stdout.write(f"keyed {len(rows)} tracklets scored before auditing")
        for night in nights:
            for model in ModelVersion.objects.filter(
                pk__in=Tracklet.objects.filter(night=night).values("model_version")
            ):
                added = audit_draw(night=night, model=model)
                if added:
                    self.stdout.write(f"{night.date} {model}: {added} audit rows drawn")
            for model, e in night_estimates(night):
                self.stdout.write(
                    f"{night.date} model {model}: {e.real} real in {e.judged} judged of "
                    f"{e.drawn} drawn ({e.rejected} auto-rejected); lost-real rate "
                    f"{e.low:.2%}-{e.high:.2%}; {e.status}"
                )
        if options["verify"]:
            bad = 0
            rows = QueueAssignment.objects.filter(kind="audit").select_related(
                "tracklet__night", "model_version"
            )
            if options["night"]:
                rows = rows.filter(tracklet__night__date=options["night"])
            for row in rows:
                t = row.tracklet
                key = audit_key(
                    night=t.night.date.isoformat(),
                    version=row.model_version.version,
                    survey_id=t.survey_id,
                )
                if t.model_version_id == row.model_version_id and abs(key - t.audit_key) > 1e-12:
                    bad += 1
                    self.stderr.write(f"{t}: stored key {t.audit_key} != derived {key}")
            self.stdout.write(f"verified {rows.count()} audit rows: {bad} mismatched")
            if bad:
                raise SystemExit(1)
