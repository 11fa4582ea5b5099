"""`manage.py model_evaluate [VERSION]`: evaluate a model on the fixed synthetic set."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from screening.models import ModelVersion
from screening.registry.versions import (
    evaluation_marked,
    evaluation_sizes,
    model_evaluate,
    retraining_sets_marked,
    synthetic_report,
)


class Command(BaseCommand):
    help = (
        "Evaluate a model version (the active one by default) on the fixed synthetic evaluation "
        "set (1,500 real, 1,500 bogus with glare in the mix, 300 from a field near a planet), "
        "as training runs do for their candidates, and store the "
        "figures with it: the registry's columns, the ROC curve and the confusion matrix."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", nargs="?", help="a model version (default: the active)")
        parser.add_argument("--real", type=int, default=None, help="real tracklets (1500)")
        parser.add_argument("--bogus", type=int, default=None, help="bogus tracklets (1500)")
        parser.add_argument(
            "--planet", type=int, default=None, help="bogus tracklets near a planet (300)"
        )
        parser.add_argument(
            "--if-missing", action="store_true", help="do nothing if it has an evaluation stored"
        )
        parser.add_argument(
            "--save-beside",
            action="store_true",
            help="also write the figures beside the checkpoint (<checkpoint>.evaluation.json), "
            "where registering that model on a new install finds them",
        )
        parser.add_argument(
            "--retraining-sets",
            action="store_true",
            help="also simulate the tracklets a retraining run trains its TCN on and score the "
            "model on the set it is compared on (both kept under var/cache/evaluation/), so "
            "that the first retraining does not wait for them",
        )

    def handle(self, *args, version: str | None, real: int | None, bogus: int | None,
               planet: int | None, if_missing: bool, retraining_sets: bool,
               save_beside: bool = False, **options) -> None:  # fmt: skip
        if version is None:
            model = ModelVersion.objects.active()
            if model is None:
                raise CommandError("there is no active model: name a version")
        else:
            model = ModelVersion.objects.filter(version=version).first()
            if model is None:
                raise CommandError(f"no model version {version!r}")
        try:
            evaluation_sizes(real, bogus, planet)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if if_missing and synthetic_report(model):
            self.stdout.write(f"model {model.version} already has an evaluation")
        else:
            self._evaluate(model, real, bogus, planet)
        if save_beside:
            from screening.registry.checkpoints import checkpoint_local
            from screening.registry.versions import evaluation_file_write

            model.refresh_from_db()
            path = evaluation_file_write(model, checkpoint_local(model))
            self.stdout.write(f"figures saved beside the checkpoint: {path}")
        if retraining_sets:  # after the figures, which the Models page waits for
            # marked while it runs: the Models page says that a retraining started meanwhile
            # makes what is missing itself, and takes longer
            with retraining_sets_marked(model.version):
                self._retraining_sets(model)

    def _evaluate(self, model: ModelVersion, real: int | None, bogus: int | None,
                  planet: int | None) -> None:  # fmt: skip
        # The Models page shows "evaluating…" until the figures are stored, or the failure.
        with evaluation_marked(model.version):
            self.stdout.write(f"evaluating model {model.version} on the fixed simulated set")
            try:
                model = model_evaluate(version=model.version, n_real=real, n_bogus=bogus,
                                       planet_bogus=planet, progress=True)  # fmt: skip
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        figures = synthetic_report(model)["candidate"]
        at = figures["at_model_threshold"]
        self.stdout.write(
            f"AUC {figures['auc']:.4f}; at threshold {model.threshold:.4f}: real recall "
            f"{at['real_recall']:.2%}, bogus rejection {at['bogus_rejection']:.2%}"
        )

    def _retraining_sets(self, model: ModelVersion) -> None:
        from pathlib import Path

        from classifier.inference import load_model
        from classifier.retrain import synthetic_evaluation, tcn_sets
        from screening.registry.checkpoints import checkpoint_local
        from screening.registry.training import training_config, training_preset

        cfg = training_config()
        network = load_model(checkpoint_local(model), device=cfg.device)
        self.stdout.write(f"simulating the retraining runs' tracklets (once; {training_preset()})")
        tcn_sets(cfg, network.preprocessing, tuple(network.classes), progress=True)
        # A run scores its base on the evaluation set beside the candidate: made here once (and
        # kept by model version), the first run does not spend minutes on it.
        self.stdout.write("scoring the model on the set a retraining run compares it on (once)")
        synthetic_evaluation(
            {"base": network},
            cfg.eval_real,
            cfg.eval_bogus,
            planet_bogus=cfg.eval_planet,
            cache_dir=Path(cfg.cache_dir),
            workers=cfg.workers,
            progress=True,
        )
