"""An Optuna trial's job reports its val/loss to the trial, and stops when the study's pruner says so.

Active only in a job of an Optuna search with a storage (hparams_search=optuna): the sweeper names
the trial in the job's Hydra config (hydra.job.env_set, primer.sweeps.studies.TRIAL_ENV). Each validation
reports val/loss at its global step; when the pruner (hydra.sweeper.pruner: median, successive_halving,
hyperband, ...) prunes the trial, the training stops there as it would at max_steps (checkpoint,
metrics.json, TensorBoard), `pruned.txt` says why, and the sweeper records the trial as pruned.
Intermediate values need validations during the run: trainer.val_check_interval=N (steps). The last
validation reports too, but never prunes: the run is done, and its value is the trial's.
Optuna's PyTorchLightningPruningCallback (optuna-integration) reports per epoch; a primer run is one epoch.
"""

import math
from pathlib import Path

from lightning.pytorch.callbacks import Callback

from primer.run.guards import of_planned
from primer.run.system import planned_steps
from primer.run.files import PRUNED_FILE
from primer.sweeps.studies import PRUNED_AT, STUDY_ENV, TRIAL_ENV, reaching
from primer.writes import write_atomic


def trial_reporter(output_dir: str) -> list[Callback]:
    """[ReportToTrial] in a job of an Optuna search that stores its study; [] anywhere else."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    hydra_cfg = HydraConfig.get()
    number, study = hydra_cfg.job.env_set.get(TRIAL_ENV), hydra_cfg.job.env_set.get(STUDY_ENV)
    storage = hydra_cfg.sweeper.get("storage")
    if number is None or storage is None:
        return []
    return [ReportToTrial(storage, study, int(number), hydra_cfg.sweeper.get("pruner"), output_dir)]


class ReportToTrial(Callback):
    def __init__(self, storage: str, study_name: str, number: int, pruner_cfg, output_dir: str):
        self.storage, self.study_name, self.number = storage, study_name, number
        self.pruner_cfg, self.output_dir = pruner_cfg, output_dir
        self.trial = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        if trainer.is_global_zero and self.trial is None:
            from hydra.utils import instantiate

            from primer.sweeps.studies import load_trial

            pruner = instantiate(self.pruner_cfg) if self.pruner_cfg else None
            self.trial = load_trial(self.storage, self.study_name, self.number, pruner)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        prune = False
        if trainer.is_global_zero:
            value = trainer.callback_metrics.get("val/loss")
            if value is not None and math.isfinite(value := float(value)):
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
