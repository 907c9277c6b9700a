"""In a job of an Optuna search with a storage, each validation reports val/loss to the trial; when the
pruner says so the training stops there, as at max_steps, and `pruned.txt` says why. The last
validation reports but never prunes: the run is done, and its value is the trial's."""

import math
from pathlib import Path

from lightning.pytorch.callbacks import Callback

from primer.run.dashboard import VAL_LOSS
from primer.run.files import PRUNED_FILE
from primer.run.guards import of_planned
from primer.run.system import planned_steps
from primer.sweeps.studies import PRUNED_AT, STUDY_ENV, TRIAL_ENV, open_storage, reaching
from primer.writes import write_atomic


def trial_reporter(hydra_cfg, output_dir: str) -> list[Callback]:
    """[ReportToTrial] in a job of an Optuna search that stores its study; [] anywhere else."""
    if (number := hydra_cfg.job.env_set.get(TRIAL_ENV)) is None or hydra_cfg.sweeper.get("storage") is None:
        return []
    return [ReportToTrial(hydra_cfg.sweeper.storage, hydra_cfg.job.env_set.get(STUDY_ENV), int(number),
                          hydra_cfg.sweeper.get("pruner"), output_dir)]


class ReportToTrial(Callback):
    def __init__(self, storage: str, study_name: str, number: int, pruner_cfg, output_dir: str):
        self.storage, self.study_name, self.number = storage, study_name, number
        self.pruner_cfg, self.output_dir, self.trial = pruner_cfg, output_dir, None

    def setup(self, trainer, pl_module, stage: str) -> None:
        import optuna
        from hydra.utils import instantiate

        if trainer.is_global_zero and self.trial is None:
            with reaching(self.storage):
                storage = open_storage(self.storage)
                study = optuna.load_study(study_name=self.study_name, storage=storage,
                                          pruner=instantiate(self.pruner_cfg) if self.pruner_cfg else None)
                study_id = storage.get_study_id_from_name(self.study_name)
                self.trial = optuna.trial.Trial(study, storage.get_trial_id_from_study_id_trial_number(
                    study_id, self.number))

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        prune, value = False, trainer.callback_metrics.get(VAL_LOSS)
        if trainer.is_global_zero and value is not None and math.isfinite(value := float(value)):
            with reaching(self.storage):  # a server gone: one line naming it, not SQLAlchemy's page
                self.trial.report(value, trainer.global_step)
                # at the last step there is nothing left to save: the trial completes, and its value counts
                prune = trainer.global_step != planned_steps(trainer) and self.trial.should_prune()
        if trainer.strategy.broadcast(prune, src=0):  # every DDP rank stops at the same step
            trainer.should_stop = True
            if trainer.is_global_zero:
                with reaching(self.storage):
                    self.trial.set_user_attr(PRUNED_AT, trainer.global_step)
                reason = (f"at step {trainer.global_step}{of_planned(trainer)}: val/loss {value:.4g} "
                          f"({type(self.trial.study.pruner).__name__})")
                write_atomic(Path(self.output_dir, PRUNED_FILE), reason + "\n")
