"""The command-line contract, one command line per row: what Lightning and Hydra accept works as they
document it; everything else ends in one line that names the key, exit 2, and leaves no run dir.

Each command runs in this process through the real entry point (`primer.train.main`, `primer.eval.main`)
at a tiny size, so the table stays in the fast suite.
"""

import json
from pathlib import Path

import pytest
import torch

import primer.eval as primer_eval
from tests.bad_input import SHARED, says
from tests.conftest import TINY

QUIET = [*TINY, "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
RUN = "outputs/run"  # hydra.run.dir of the accepted commands


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err[-3000:]
    return err.strip()


# --- accepted: Lightning's and Hydra's documented values work -------------------------------------------

ACCEPTED = {  # overrides -> what must hold of the run dir `run` (and the command's stdout)
    "trainer.fast_dev_run=5": lambda run, out: steps(run) == 5,
    "trainer.check_val_every_n_epoch=null": lambda run, out: "val/loss" in metrics(run),
    "trainer.max_steps=-1 trainer.max_epochs=2 data.steps=3": lambda run, out: steps(run) == 6
    and stored(run)["trainer"]["max_steps"] == -1,
    "trainer.log_every_n_steps=0": lambda run, out: "train/loss" in metrics(run),
    "trainer.precision=64-true": lambda run, out: weights(run).dtype == torch.float64,
    "trainer.precision=bf16-true": lambda run, out: weights(run).dtype == torch.bfloat16,
    "trainer.precision=16-true": lambda run, out: weights(run).dtype == torch.float16,
    "trainer.enable_checkpointing=false": lambda run, out: not (run / "checkpoints").exists()
    and "val/loss" in metrics(run),
    "trainer.barebones=true": lambda run, out: not (run / "checkpoints").exists()
    and not events(run) and (run / "metrics.json").exists(),
    "trainer.logger=false": lambda run, out: not events(run) and "train/loss" in metrics(run)
    and "tensorboard --logdir" not in out,  # no events: no command to look at them
    "trainer.max_time={minutes:1}": lambda run, out: steps(run) == 6  # Lightning's dict form
    and stored(run)["trainer"]["max_time"] == {"minutes": 1},
    "+trainer.gradient_clip_val=1.0": lambda run, out: stored(run)["trainer"]["gradient_clip_val"] == 1.0,
    "hydra/job_logging=disabled": lambda run, out: not (run / "train.log").exists() and "train/loss" in metrics(run),
    "data.batch_size=1": lambda run, out: "train/mse" in metrics(run) and "train/r2" not in metrics(run),
    "optimizer=adam optimizer.weight_decay=0.1": lambda run, out: stored(run)["optimizer"]["weight_decay"] == 0.1,
    # a fraction of the train and val batches (Lightning's own advice, limit_val_batches, would not help)
    "trainer.overfit_batches=0.5": lambda run, out: steps(run) == 6 and "val/loss" in metrics(run),
    # Lightning's lr_scheduler dict: ReduceLROnPlateau, with the val/loss it monitors, runs ...
    "scheduler=plateau": lambda run, out: steps(run) == 6 and checkpoint(run)["lr_schedulers"][0]["patience"] == 2,
    # ... and cuts the lr when val/loss does not improve (mode=max: a falling loss never does)
    "scheduler=plateau scheduler.scheduler.mode=max scheduler.scheduler.patience=0 trainer.max_steps=-1 "
    "trainer.max_epochs=3 data.steps=2": lambda run, out: steps(run) == 6
    and checkpoint(run)["optimizer_states"][0]["param_groups"][0]["lr"] < stored(run)["optimizer"]["lr"],
    # ... and with interval=step, steps after each validation of a one-epoch run (interval=epoch: not before the
    # final checkpoint): after steps 2 and 4, then 6
    "scheduler=plateau scheduler.interval=step scheduler.frequency=2 trainer.val_check_interval=2":
    lambda run, out: checkpoint(run)["lr_schedulers"][0]["last_epoch"] == 2,
    # ... and after step 3 on step 2's val/loss (step 6's after the final checkpoint): a validation before its
    # first step is enough
    "scheduler=plateau scheduler.interval=step scheduler.frequency=3 trainer.val_check_interval=2":
    lambda run, out: checkpoint(run)["lr_schedulers"][0]["last_epoch"] == 1,
    # lightning-hydra-template's habits: debug=fdr is Lightning's fast_dev_run (one step), debug=profiler its
    # SimpleProfiler, whose report goes to train.log with Lightning's other lines
    "debug=fdr": lambda run, out: steps(run) == 1 and "fast_dev_run: true" in (run / ".hydra/config.yaml").read_text()
    and not (run / "checkpoints").exists(),
    "debug=profiler": lambda run, out: "FIT Profiler Report" in (run / "train.log").read_text(),
    "optimizer.lr=0": lambda run, out: stored(run)["optimizer"]["lr"] == 0 and "train/loss" in metrics(run),
    "paths.output_dir=elsewhere": lambda run, out: (Path("elsewhere") / "metrics.json").exists()
    and (Path("elsewhere") / "checkpoints/final.ckpt").exists() and not (run / "metrics.json").exists(),
    "trainer.default_root_dir=elsewhere": lambda run, out: (Path("elsewhere") / "checkpoints/final.ckpt").exists()
    and events(Path("elsewhere")) and not (run / "checkpoints").exists() and not events(run)
    and "tensorboard --logdir elsewhere" in out,
    "callbacks.model_checkpoint.dirpath=elsewhere": lambda run, out: (Path("elsewhere") / "final.ckpt").exists(),
    "logger.tensorboard.save_dir=elsewhere": lambda run, out: events(Path("elsewhere")) and not events(run),
    "+callbacks.model_checkpoint.monitor=val/loss": lambda run, out: (run / "checkpoints/final.ckpt").exists(),
    # NAME=null turns that one off, as in lightning-hydra-template (Lightning's default checkpoint remains)
    "callbacks.model_checkpoint=null": lambda run, out: not (run / "checkpoints/final.ckpt").exists()
    and "val/loss" in metrics(run),
    "logger.tensorboard=null": lambda run, out: not events(run) and "train/loss" in metrics(run),
    "+callbacks.early_stopping._target_=lightning.pytorch.callbacks.EarlyStopping "
    "+callbacks.early_stopping.monitor=val/r2 +callbacks.early_stopping.mode=max": lambda run, out: steps(run) == 6,
    # the cosine spans the run Lightning runs (2 epochs of 3 steps), and ends at its end
    "scheduler=cosine trainer.max_steps=-1 trainer.max_epochs=2 data.steps=3": lambda run, out: steps(run) == 6
    and checkpoint(run)["lr_schedulers"][0]["T_max"] == 6 and checkpoint(run)["lr_schedulers"][0]["_last_lr"] == [0.0],
    # ... as Lightning counts its optimizer steps: 2 epochs of 3 batches (of 4), 2 batches a step, the last 1
    "scheduler=cosine trainer.max_steps=-1 trainer.max_epochs=2 data.steps=4 trainer.limit_train_batches=3 "
    "trainer.accumulate_grad_batches=2": lambda run, out: steps(run) == 4
    and checkpoint(run)["lr_schedulers"][0]["T_max"] == 4 and checkpoint(run)["lr_schedulers"][0]["_last_lr"] == [0.0],
    # any scheduler argument left ??? is given the run's planned steps
    "scheduler=step scheduler.step_size=???": lambda run, out: checkpoint(run)["lr_schedulers"][0]["step_size"] == 6,
}


def events(where: Path) -> list[Path]:
    return list(where.glob("events.out.tfevents.*"))


def steps(run: Path) -> int:
    return json.loads((run / "run.json").read_text())["steps"]


def metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def checkpoint(run: Path) -> dict:
    return torch.load(run / "checkpoints/final.ckpt", weights_only=True)


def stored(run: Path) -> dict:
    return torch.load(run / "checkpoints/final.ckpt", weights_only=True)["primer"]["config"]


def weights(run: Path) -> torch.Tensor:
    return torch.load(run / "checkpoints/final.ckpt", weights_only=True)["state_dict"]["net.linear1.weight"]


@pytest.mark.slow  # trains in this process
@pytest.mark.parametrize("overrides", ACCEPTED)
def test_what_lightning_and_hydra_accept_runs_and_does_what_it_says(cli, tmp_path, overrides):
    code, out, err = cli(*QUIET, *overrides.split(), f"hydra.run.dir={RUN}")
    assert code == 0, err[-3000:]
    assert ACCEPTED[overrides](tmp_path / RUN, out)


@pytest.mark.slow  # trains in this process
def test_seed_null_draws_a_seed_and_records_it_in_the_run_config_and_checkpoint(cli, tmp_path):
    code, _, err = cli(*QUIET, "seed=null", f"hydra.run.dir={RUN}")
    assert code == 0, err[-3000:]
    import yaml

    seed = yaml.safe_load((tmp_path / RUN / ".hydra/config.yaml").read_text())["seed"]
    assert isinstance(seed, int) and stored(tmp_path / RUN)["seed"] == seed
    assert stored(tmp_path / RUN)["data"]["seed"] == seed  # the data was made from it


@pytest.mark.slow  # trains in this process
def test_config_dir_adds_choices_and_its_runs_are_checked_too(cli, tmp_path):
    (tmp_path / "extra/model").mkdir(parents=True)
    (tmp_path / "extra/model/wide.yaml").write_text(
        "defaults: [two_layer]\nhidden_dim: 7\n")
    code, _, err = cli("--config-dir", "extra", *QUIET, "model=wide", "model.hidden_dim=7", f"hydra.run.dir={RUN}")
    assert code == 0, err[-3000:]
    assert weights(tmp_path / RUN).shape == (7, 8)
    code, _, err = cli("--config-dir", "extra", *QUIET, "model=wide", "model.hidden_dim=-3")
    assert code == 2 and one_line(err) == "error: model.hidden_dim=-3: must be a positive integer"
    code, _, err = cli("--config-dir", "extra", *QUIET, f"ckpt_path={tmp_path / 'extra/model/wide.yaml'}")
    assert code == 2 and "not a checkpoint" in one_line(err)


@pytest.mark.slow  # trains in this process
def test_a_sweep_runs_every_job(cli, tmp_path):
    code, _, err = cli("-m", *QUIET, "optimizer.lr=1e-4,1e-3", "hydra.sweep.dir=sweep")
    assert code == 0, err[-3000:]
    jobs = sorted(p for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert [p.name[:2] for p in jobs] == ["0_", "1_"] and all((p / "metrics.json").is_file() for p in jobs)
    assert [stored(p)["optimizer"]["lr"] for p in jobs] == [1e-4, 1e-3]


def test_printing_a_config_shows_values_a_run_would_reject(cli):
    code, out, _ = cli("--cfg", "job", "data.batch_size=0")
    assert code == 0 and "batch_size: 0" in out


# --- rejected: one line naming the key, exit 2, nothing written -----------------------------------------

REJECTED = [  # the rows of tests/bad_input.py, and these: (overrides, message), read as there
    *SHARED,
    ("trainer.fast_dev_run=often",
     "trainer.fast_dev_run=often: Input should be a valid integer; Input should be a valid boolean "
     "(lightning.Trainer)"),
    ("trainer.log_every_n_steps=often",
     "trainer.log_every_n_steps=often: Input should be a valid integer (lightning.Trainer)"),
    ("model=manual trainer.gradient_clip_val=0.5",
     "trainer.gradient_clip_val=0.5: model=manual steps its optimizer ..."),
    ("model=manual trainer.accumulate_grad_batches=2", "trainer.accumulate_grad_batches=2: model=manual steps ..."),
    ("trainer.val_check_interval=100 trainer.max_steps=50",
     "trainer.val_check_interval=100: a run is one epoch of trainer.max_steps=50 steps; "
     "use trainer.val_check_interval<=50"),
    ("model.input_dim=5", "model.input_dim=5: the net's size follows data.input_dim (8); set data.input_dim=5 instead"),
    ("optimizer._target_=torch.optim.AdamW",
     "optimizer.momentum: torch.optim.AdamW takes no argument momentum; remove it with ~optimizer.momentum"),
    ("+trainer.foo=1", "trainer.foo: lightning.Trainer takes no argument foo; drop it from the command line"),
    ("trainer.accelerator=mps", "trainer: MisconfigurationException: `MPSAccelerator` can not run on your system ..."),
    ("trainer.devices=0", "trainer: MisconfigurationException: ..."),
    ("+optimizer.nesterov=true", "optimizer: ValueError: Nesterov momentum requires a momentum and zero dampening ..."),
    # a drawn seed is written back into .hydra/config.yaml only where the run dir is kept
    ("seed=null +optimizer.nesterov=true", "optimizer: ValueError: Nesterov momentum requires a momentum and zero ..."),
    # the run's files go elsewhere, Hydra's into hydra.run.dir: both are given back
    ("paths.output_dir=elsewhere +optimizer.nesterov=true", "optimizer: ValueError: Nesterov momentum requires a ..."),
    ("paths.output_dir=/dev/null/run", "paths.output_dir=/dev/null/run: /dev/null is not a dir; give a dir to write "
     "into, or a path where one can be made"),  # a dir that cannot be made for what is in its way
    ("trainer.logger=wandb",
     "trainer.logger=wandb: must be true or false; choose a logger with logger=tensorboard, ..."),
    ("+trainer.callbacks=[]", "trainer.callbacks: primer sets the Trainer's callbacks from the callbacks group ..."),
    ("tags=[a,b]", "tags: no such key; to append to your config use +tags=[a,b]"),  # Hydra's own hint
    ("data.num_workers=2", "data.num_workers: no such key; to append to your config use +data.num_workers=2"),
    # callbacks and loggers are checked against their classes too, before anything is built
    ("callbacks.model_checkpoint.monitor=val/loss", "callbacks.model_checkpoint.monitor: no such key; "
     "to append to your config use +callbacks.model_checkpoint.monitor=val/loss"),
    ("callbacks.model_checkpoint.monitr=val/loss", "callbacks.model_checkpoint.monitr: no such key; "
     "to append to your config use +callbacks.model_checkpoint.monitr=val/loss"),
    ("+callbacks.model_checkpoint.monitr=val/loss", "callbacks.model_checkpoint.monitr: "
     "lightning.pytorch.callbacks.ModelCheckpoint takes no argument monitr; "
     "did you mean callbacks.model_checkpoint.monitor?"),
    ("+callbacks.model_checkpoint.save_top_k=many", "callbacks.model_checkpoint.save_top_k=many: Input should be a "
     "valid integer "
     "(lightning.pytorch.callbacks.ModelCheckpoint)"),
    ("+callbacks.early_stopping.monitor=val/loss", "callbacks.early_stopping: names no class to build; give it one, "
     "e.g. +callbacks.early_stopping._target_=lightning.pytorch.callbacks.EarlyStopping"),
    ("+callbacks.x._target_=nowhere.Callback",
     "callbacks.x._target_=nowhere.Callback: cannot be imported; give a dotted path to a class or function"),
    ("logger=csv +logger.csv.flush_every=3", "logger.csv.flush_every: lightning.pytorch.loggers.CSVLogger takes no "
     "argument flush_every; drop it from the command line"),
    ("optimizer.nesterov=true",
     "optimizer.nesterov: no such key; to append to your config use +optimizer.nesterov=true"),
    ("optimizer.l=1", "optimizer.l: no such key; to append to your config use +optimizer.l=1"),
    ("optimizer=adam optimizer.momentum=0.9", "optimizer.momentum: no such key; optimizer=sgd has it"),
    ("data.noise_std=0.2", "data.noise_std: no such key; data=teacher has it"),
    ("scheduler.gama=0.5", "scheduler.gama: no such key; to append to your config use +scheduler.gama=0.5"),
    ("hydra.job.chdirr=true", "hydra.job.chdirr: no such key; did you mean hydra.job.chdir?"),  # Hydra's keys too
    ("hydra.job.chdir=abc", "hydra.job.chdir: Value 'abc' is not a valid bool (type str)"),  # OmegaConf's reason
    ("-m hparams_search=optuna hydra.sweeper.n_trial=2",
     "hydra.sweeper.n_trial: no such key; did you mean hydra.sweeper.n_trials?"),
    ("-m hparams_search=optuna hydra.sweeper.params.optimizer.lr=interval(0,1)",
     "hydra.sweeper.params.optimizer.lr=interval(0,1): sweeping over Hydra's configuration is not supported ..."),
    # a sweep of no jobs would end at once, exit 0, with an empty summary
    ("-m optimizer.lr=glob(*)", "optimizer.lr=glob(*): sweeps no value (glob() picks options of a config group); "
     "list one or more: optimizer.lr=a,b"),
    ("-m model=glob(nothing*)", "model=glob(nothing*): matches no model; choose from autograd, custom_relu, manual, "
     "raw_custom_relu, sequential, two_layer"),
    ("-m seed=range(3,3)", "seed=range(3,3): sweeps no value; list one or more: seed=a,b"),
    ("-m hparams_search=optuna hydra.sweeper.n_trials=0",
     "hydra.sweeper.n_trials=0: must be a positive integer (the trials the search runs)"),
    ("-m hparams_search=optuna hydra.sweeper.n_jobs=0",
     "hydra.sweeper.n_jobs=0: must be a positive integer (the trials asked and run together)"),
    ("-m hydra.sweeper.max_batch_size=0 seed=0,1",
     "hydra.sweeper.max_batch_size=0: must be a positive integer, or null for all jobs in one batch"),
    ("-m hydra/launcher=joblib hydra.launcher.n_jobs=0 seed=0,1",
     "hydra.launcher.n_jobs=0: must be a number of processes, or -1 for one per core (joblib)"),
    ("-m hydra/launcher=local hydra.launcher.cpus_per_task=0 seed=0,1",
     "hydra.launcher.cpus_per_task=0: must be a positive integer (the cores each job is given)"),
    ("-m optimizer.lr=interval(0.001,0.01)", "optimizer.lr=interval(0.001,0.01): a grid sweep takes values (a,b), "
     "range() or choice(); interval() is a search space: add hparams_search=optuna to draw optimizer.lr from it"),
    # a sweep's values, checked before the first job runs, get the same lines (the hint with the first value)
    ("-m +trainer.max_steps=5,6", "+trainer.max_steps=5,6: could not append to config. An item is already at "
     "'trainer.max_steps'; either remove + prefix: 'trainer.max_steps=5'; or add a second + ..."),
    ("-m callbacks.model_checkpoint.monitor=val/loss,train/loss", "callbacks.model_checkpoint.monitor: no such key; "
     "to append to your config use +callbacks.model_checkpoint.monitor=val/loss"),
    ("-m callbacks.model_checkpoint.monitr=val/loss,train/loss", "callbacks.model_checkpoint.monitr: no such key; "
     "to append to your config use +callbacks.model_checkpoint.monitr=val/loss"),
    ("-m model=two_layer,bogus optimizer.lr=1e-4,1e-3", "model=bogus: no such model; choose one of ..."),
    ("task_name=x", "task_name: no such key; to append to your config use +task_name=x"),
    ("+trainer.max_steps=5", "+trainer.max_steps=5: could not append to config. An item is already at "
     "'trainer.max_steps'; either remove + prefix: 'trainer.max_steps=5'; or add a second + to add or override "
     "'trainer.max_steps': '++trainer.max_steps=5'"),
    ("~optimizer.nope", "~optimizer.nope: could not delete from config. 'optimizer.nope' does not exist"),
    # Hydra's own hint speaks of a YAML defaults list's `override` keyword
    ("+experiment=1_manual_gradient_computation", "+experiment=1_manual_gradient_computation: multiple values for "
     "experiment; the group has a default already; choose it without the +: experiment=1_manual_gradient_computation"),
    ("hydra/job_logging=nope", "hydra/job_logging=nope: no such hydra/job_logging; choose one of ..."),
    ("seed=-1", "seed=-1: must be an integer from 0 to 4294967295 (numpy's seeds), or null to draw one"),
    ("seed=99999999999", "seed=99999999999: must be an integer from 0 to 4294967295 (numpy's seeds), ..."),
    ("trainer.precision=16-mixed model=manual", "trainer.precision=16-mixed: model=manual derives its gradients by "
     "hand, outside autocast and the gradient scaler of mixed precision; use 32-true, 64-true, bf16-true or 16-true, "
     "or another model"),
    ("trainer.precision=bf16 model=manual", "trainer.precision=bf16: model=manual derives its gradients by hand, ..."),
    ("optimizer.lr==", "optimizer.lr==: not an override Hydra can read; see https://hydra.cc/docs/1.2/advanced/"
     "override_grammar/basic for details"),
    # Lightning takes an int 0, then divides by it at the first step (a traceback, the run dir left)
    ("trainer.val_check_interval=0", "trainer.val_check_interval=0: must be a number of steps (1 or more), or the "
     "fraction of an epoch after which to validate (0.0 to 1.0)"),
    ("trainer.val_check_interval=1.5", "trainer.val_check_interval=1.5: must be a number of steps (1 or more), or "
     "the fraction of an epoch after which to validate (0.0 to 1.0)"),
    ("+callbacks.early_stopping._target_=lightning.pytorch.callbacks.EarlyStopping "
     "+callbacks.early_stopping.monitor=val_loss",
     "callbacks.early_stopping.monitor=val_loss: primer logs no such metric; did you mean val/loss? it logs "
     "train/loss, train/explained_variance, train/mse, train/r2, val/loss, val/explained_variance, val/mse, val/r2"),
    ("+callbacks.model_checkpoint.monitor=loss", "callbacks.model_checkpoint.monitor=loss: primer logs no such "
     "metric; it logs train/loss, train/explained_variance, train/mse, train/r2, val/loss, val/explained_variance, "
     "val/mse, val/r2, epoch, step"),
    ("scheduler=cosine trainer.max_steps=-1 trainer.max_time=00:00:01:00",
     "scheduler.T_max: the scheduler spans the run's steps, and trainer.max_steps=-1 with no trainer.max_epochs sets "
     "none; set trainer.max_steps, or trainer.max_epochs"),
    ("scheduler=cosine scheduler.T_max=${trainer.max_steps} trainer.max_steps=-1 trainer.max_epochs=1",
     "scheduler.T_max=-1: the scheduler spans the run's steps, and trainer.max_steps=-1 sets none; set "
     "trainer.max_steps, or 'scheduler.T_max=???' for the steps the run plans"),
    ("-m seed=0,1 trainer=ddp_cpu trainer.devices=2 trainer.strategy=ddp",
     "trainer.devices=2: a sweep of the basic launcher runs its jobs in this one process, ..."),
    ("scheduler=plateau scheduler.monitor=val/los", "scheduler.monitor=val/los: primer logs no such metric; did you "
     "mean val/loss? ..."),
    # a node inside a group that names a class is built too, and checked against it first
    ("scheduler=plateau scheduler.scheduler.mode=up", "scheduler.scheduler.mode=up: must be one of min, max "
     "(torch.optim.lr_scheduler.ReduceLROnPlateau)"),
    ("scheduler=plateau +scheduler.scheduler.patiense=3", "scheduler.scheduler.patiense: "
     "torch.optim.lr_scheduler.ReduceLROnPlateau takes no argument patiense; "
     "did you mean scheduler.scheduler.patience?"),
    # its outer node is Lightning's lr_scheduler dict, checked against that dataclass's fields
    ("scheduler=plateau +scheduler.intervall=step", "scheduler.intervall: lightning.pytorch.utilities.types."
     "LRSchedulerConfig takes no argument intervall; did you mean scheduler.interval?"),
    ("scheduler=plateau +scheduler.montor=val/r2", "scheduler.montor: lightning.pytorch.utilities.types."
     "LRSchedulerConfig takes no argument montor; did you mean scheduler.monitor?"),
    ("scheduler=plateau scheduler.interval=epochs", "scheduler.interval=epochs: must be one of step, epoch "
     "(lightning.pytorch.utilities.types.LRSchedulerConfig)"),
    # stepped on val/loss before the first validation, Lightning would raise inside the run
    ("scheduler=plateau scheduler.interval=step", "scheduler.frequency=1: with scheduler.interval=step the scheduler "
     "steps on val/loss from step 1, and the first validation is at step 6; use scheduler.frequency=6 or more, "
     "trainer.val_check_interval=1, or scheduler.interval=epoch"),
    ("scheduler=plateau scheduler.interval=step scheduler.frequency=2 trainer.val_check_interval=3",
     "scheduler.frequency=2: with scheduler.interval=step the scheduler steps on val/loss from step 2, and the first "
     "validation is at step 3; use scheduler.frequency=3 or more, trainer.val_check_interval=2, or "
     "scheduler.interval=epoch"),
    # Hydra removes no key of a list's item: the list is given again
    ("+trainer.plugins=[{_target_:lightning.pytorch.plugins.DoublePrecision,foo:1}]", "trainer.plugins[0].foo: "
     "lightning.pytorch.plugins.DoublePrecision takes no argument foo; give trainer.plugins again without it"),
    ("scheduler=plateau model=manual", "scheduler.monitor=val/loss: model=manual steps its scheduler itself at every "
     "step, with no metric to give it; use scheduler=step or scheduler=cosine, or another model"),
    # the slips people make: each line says what to type instead
    ("model=two_layer,custom_relu", "model=two_layer,custom_relu: ambiguous value for argument "
     "'model=two_layer,custom_relu'; a list of values is a sweep, one job each; add -m: "
     "python -m primer.train -m trainer.max_steps=6 ..."),
    ("hparams_search=optuna", "hparams_search=optuna: a search runs its trials only as a sweep; add -m: "
     "python -m primer.train -m ..."),
    ("max_steps=10", "max_steps: no such key; did you mean trainer.max_steps?"),
    ("max_step=10", "max_step: no such key; did you mean trainer.max_steps?"),
    ("lr=0.1", "lr: no such key; did you mean tutorial.lr or optimizer.lr?"),  # optimizer.lr follows tutorial.lr
    ("input_dim=5", "input_dim: no such key; did you mean model.input_dim or data.input_dim?"),
    ("model=twolayer", "model=twolayer: no such model; did you mean model=two_layer?"),
    ("debug=fdbr", "debug=fdbr: no such debug; did you mean debug=fdr?"),
    ("-m model=two_layer,twolayer", "model=twolayer: no such model; did you mean model=two_layer?"),
    ("optimizer=2", "optimizer=2: config group override must be a string or a list. Got int; choose one of adam, sgd"),
    ("logger=null", "logger=null: config group override must be a string or a list. Got NoneType; choose one of csv, "
     "mlflow, none, tensorboard, wandb"),
    ("~trainer.max_steps", "~trainer.max_steps: data.steps uses it; set trainer.max_steps instead of removing it: "
     "it must be a positive integer, or -1 for no limit ..."),
    ("ckpt_path=outputs/step=20.ckpt", "ckpt_path=outputs/step=20.ckpt: a value Hydra reads only in quotes; "
     "write it as 'ckpt_path=\"outputs/step=20.ckpt\"'"),
    ("ckpt_path=outputs/é.ckpt", "ckpt_path=outputs/é.ckpt: a value Hydra reads only in quotes; "
     "write it as 'ckpt_path=\"outputs/é.ckpt\"'"),
    # quotes make a value readable, never a key: Hydra's reason instead
    ("hydra/../x.y=1", "hydra/../x.y=1: not a key Hydra can read (token recognition error at: '.'); see "
     "https://hydra.cc/docs/1.2/advanced/override_grammar/basic for details"),
    ('ckpt_path="outputs/step=20.ckpt"', "ckpt_path=outputs/step=20.ckpt: no such file"),  # quoted, it is read
]


@pytest.mark.parametrize(("overrides", "message"), REJECTED, ids=[o for o, _ in REJECTED])
def test_everything_else_stops_in_one_line_naming_the_key_and_writes_nothing(cli, tmp_path, overrides, message):
    flags = [a for a in overrides.split() if a.startswith("-") or a == "job"]  # Hydra's flags, then overrides
    code, out, err = cli(*flags, *QUIET, *[a for a in overrides.split() if a not in flags])
    line = one_line(err)
    assert code == 2
    assert "sweep into" not in out  # a refused sweep names no dir it never makes
    assert says(line, message), line
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize(("overrides", "message"), [
    ("callbacks.model_checkpoint.dirpath=f", "callbacks.model_checkpoint.dirpath=f: f is not a dir; give a dir to "
     "write into, or a path where one can be made"),
    ("trainer.default_root_dir=f/run", "trainer.default_root_dir=f/run: f is not a dir; ..."),
    ("logger.tensorboard.save_dir=f", "logger.tensorboard.save_dir=f: f is not a dir; ..."),
    ("-m callbacks.model_checkpoint.dirpath=ok,f", "callbacks.model_checkpoint.dirpath=f: f is not a dir; ..."),
])
def test_a_file_where_a_dir_is_written_stops_before_anything_runs(cli, tmp_path, overrides, message):
    (tmp_path / "f").write_text("mine")
    flags = [a for a in overrides.split() if a.startswith("-")]
    code, out, err = cli(*flags, *QUIET, *[a for a in overrides.split() if a not in flags])
    assert code == 2 and says(one_line(err), message), err
    assert "sweep into" not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"] and (tmp_path / "f").read_text() == "mine"


def test_a_flag_after_the_overrides_is_moved_first_in_the_command_to_type(cli, tmp_path):
    code, _, err = cli("hydra.sweep.dir=X", "-m", "seed=0,1")
    assert code == 2 and "usage:" not in err
    assert one_line(err) == "error: -m: Hydra reads its flags before the overrides; put it first: " \
                            "python -m primer.train -m hydra.sweep.dir=X seed=0,1"
    code, out, _ = cli("seed=3", "--cfg", "job")  # flags after every override: Hydra reads that line
    assert code == 0 and "seed: 3" in out
    assert not list(tmp_path.iterdir())


def test_hints_under_config_dir_know_its_choices_and_keys(cli, tmp_path):
    (tmp_path / "extra/model").mkdir(parents=True)
    (tmp_path / "extra/model/wide.yaml").write_text("defaults: [two_layer]\nhidden_dim: 7\n")
    (tmp_path / "extra/scheduler").mkdir()
    (tmp_path / "extra/scheduler/myone.yaml").write_text(
        "_target_: torch.optim.lr_scheduler.ExponentialLR\ngamma: 0.9\n")
    (tmp_path / "extra/size").mkdir()  # a group of its own
    (tmp_path / "extra/size/small.yaml").write_text("# @package _global_\nmodel:\n  hidden_dim: 3\n")
    for overrides, message in [
        ("model=wid", "model=wid: no such model; did you mean model=wide?"),
        ("scheduler=none scheduler.gamma=0.5",
         "scheduler.gamma: no such key; scheduler=myone or scheduler=step has it"),  # its own options too
        ("-m scheduler=none scheduler.gamma=0.5,0.4",  # a sweep's values, checked before any job runs
         "scheduler.gamma: no such key; scheduler=myone or scheduler=step has it"),
        ("size=2", "size=2: config group override must be a string or a list. Got int; choose one of small"),
        ("-m size=2", "size=2: config group override must be a string or a list. Got int; choose one of small"),
        ("model=wide model.hiden_dim=5", "model.hiden_dim: no such key; did you mean model.hidden_dim?"),
        ("model=wide max_steps=3", "max_steps: no such key; did you mean trainer.max_steps?"),
    ]:
        flags = [a for a in overrides.split() if a.startswith("-")]
        code, out, err = cli("--config-dir", "extra", *flags, *QUIET, *[a for a in overrides.split() if a not in flags])
        assert code == 2 and one_line(err) == f"error: {message}" and "sweep into" not in out
    assert not (tmp_path / "outputs").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_trainer_gpu_without_a_gpu_is_refused_as_typed(cli):
    code, _, err = cli(*QUIET, "trainer=gpu")
    assert code == 2 and one_line(err) == "error: trainer=gpu: no CUDA GPU is available on this machine; use " \
                                          "trainer=cpu or trainer=auto"
    code, _, err = cli(*QUIET, "trainer.accelerator=gpu")
    assert code == 2 and one_line(err).startswith("error: trainer.accelerator=gpu: no CUDA GPU is available")


@pytest.mark.slow  # trains in this process
def test_a_rejected_run_into_an_existing_dir_overwrites_nothing(cli, tmp_path):
    code, _, err = cli(*QUIET, f"hydra.run.dir={RUN}")
    assert code == 0, err[-3000:]
    before = {p: p.read_bytes() for p in (tmp_path / RUN).rglob("*") if p.is_file()}
    code, _, err = cli(*QUIET, "optimizer.lr=-1", f"hydra.run.dir={RUN}")
    assert code == 2 and one_line(err) == "error: optimizer.lr=-1: must be a number, 0 or more"
    assert {p: p.read_bytes() for p in (tmp_path / RUN).rglob("*") if p.is_file()} == before
    code, _, err = cli(*QUIET, "seed=null", "+optimizer.nesterov=true", f"hydra.run.dir={RUN}")  # fails as it builds
    assert code == 2 and one_line(err).startswith("error: optimizer: ValueError: Nesterov momentum requires")
    assert {p: p.read_bytes() for p in (tmp_path / RUN).rglob("*") if p.is_file()} == before  # its config too


# --- resuming: what the stored config says is what runs -------------------------------------------------

@pytest.fixture
def finished(cli, tmp_path):
    code, _, err = cli(*QUIET, "hydra.run.dir=outputs/first")
    assert code == 0, err[-3000:]
    return tmp_path / "outputs/first/checkpoints/final.ckpt"


@pytest.mark.slow  # trains in this process
def test_resume_applies_a_changed_lr_and_stores_what_ran(cli, tmp_path, finished):
    code, out, err = cli(*QUIET, "trainer.max_steps=10", "optimizer.lr=0.001", f"ckpt_path={finished}",
                         f"hydra.run.dir={RUN}")
    assert code == 0, err[-3000:]
    assert "done: 10 steps (resumed at step 6) in " in out  # not "10 steps" as if all ran now
    assert json.loads((tmp_path / RUN / "run.json").read_text())["resumed_at_step"] == 6
    resumed = torch.load(tmp_path / RUN / "checkpoints/final.ckpt", weights_only=True)
    assert resumed["global_step"] == 10
    assert resumed["optimizer_states"][0]["param_groups"][0]["lr"] == 0.001
    assert resumed["primer"]["config"]["optimizer"]["lr"] == 0.001


@pytest.mark.slow  # trains in this process
@pytest.mark.parametrize(("overrides", "message"), [
    ("trainer.max_steps=6", "trainer.max_steps=6: ckpt_path={ckpt} is at step 6; a resume needs trainer.max_steps>6"),
    ("trainer.max_steps=10 scheduler=step optimizer.lr=0.001",
     "optimizer.lr=0.001: ckpt_path={ckpt} was trained with optimizer.lr=0.0001, and with a scheduler ..."),
])
def test_resume_refuses_what_it_cannot_do_in_one_line(cli, tmp_path, finished, overrides, message):
    code, _, err = cli(*QUIET, *overrides.split(), f"ckpt_path={finished}")
    line, message = one_line(err), message.format(ckpt=finished)
    assert code == 2 and line.startswith(f"error: {message.removesuffix(' ...')}")
    assert not (tmp_path / "outputs/runs").exists()


# --- primer.eval follows the same contract -------------------------------------------------------------

def evaluate(cli, *args):
    return cli(*args, main=primer_eval.main, prog="primer.eval")


@pytest.mark.slow  # trains in this process
@pytest.mark.parametrize(("overrides", "message"), [
    ("trainer.max_step=5", "trainer.max_step: no such key; did you mean trainer.max_steps?"),
    ("+trainer.foo=1", "trainer.foo: no such key; primer.eval changes only keys of the config the checkpoint holds"),
    ("model.hidden_dim=50", "model.hidden_dim=50: ckpt_path={ckpt} holds a model with model.hidden_dim=4; "
                            "the weights fix the model, so evaluate it as trained"),
    ("data.batch_size=0", "data.batch_size=0: must be a positive integer"),
    # a group choice names a file of conf/; the checkpoint holds a config, whose keys eval changes
    ("data=teacher", "data=teacher: primer.eval sets keys of the config the checkpoint holds, not whole groups; "
                     "give the keys to change, as data.seed=1"),
    ("trainer=gpu", "trainer=gpu: primer.eval sets keys of the config the checkpoint holds, not whole groups; "
                    "give the keys to change, as trainer.accelerator=gpu"),
    ("optimizer=adam", "optimizer=adam: primer.eval scores the weights with no optimizer (it trains nothing); drop it"),
    ("seed", "usage: python -m primer.eval ckpt_path=PATH [key=value ...]"),
])
def test_eval_stops_bad_input_in_one_line(cli, finished, overrides, message):
    code, _, err = evaluate(cli, f"ckpt_path={finished}", overrides)
    assert code == 2 and one_line(err) == f"error: {message.format(ckpt=finished)}"


@pytest.mark.parametrize(("override", "message"), [
    ("max_steps=5", "max_steps: no such key; did you mean trainer.max_steps?"),  # as primer.train says it
    ("lr=0.1", "lr: no such key; did you mean optimizer.lr or tutorial.lr?"),
    ("trainer.max_step=5", "trainer.max_step: no such key; did you mean trainer.max_steps?"),
])
def test_eval_names_the_key_a_misspelled_one_may_mean_as_train_does(override, message):
    from omegaconf import OmegaConf

    from primer.cli.eval import _override
    from primer.exits import BadConfig

    stored = OmegaConf.create({"trainer": {"max_steps": 6}, "optimizer": {"lr": 0.1}, "tutorial": {"lr": 1e-6}})
    with pytest.raises(BadConfig) as raised:
        _override(stored, [override], "final.ckpt")
    assert str(raised.value) == message


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_eval_help_says_how_to_call_it(cli, tmp_path, flag):
    code, out, err = evaluate(cli, flag)
    assert code == 0 and err == ""
    assert out.startswith("usage: python -m primer.eval ckpt_path=PATH [key=value ...]\n")
    assert "python -m primer.eval ckpt_path=PATH data.seed=1" in out and not list(tmp_path.iterdir())


@pytest.mark.slow  # trains in this process
def test_eval_of_other_data_is_written_beside_the_first_and_says_where(cli, finished):
    code, out, err = evaluate(cli, f"ckpt_path={finished}")
    assert code == 0, err[-3000:]
    first = finished.with_name("final.eval.json")
    assert json.loads(out) == json.loads(first.read_text())
    assert f"wrote {first}" in err and "val/* and test/* score the training batch itself" in err
    before = first.read_bytes()
    code, out, err = evaluate(cli, f"ckpt_path={finished}", "data.seed=3")
    assert code == 0, err[-3000:]
    other = finished.with_name("final.eval.data.seed=3.json")
    assert f"wrote {other}" in err and json.loads(other.read_text()) == json.loads(out)
    assert first.read_bytes() == before and json.loads(out) != json.loads(before)


@pytest.mark.slow  # trains in this process
def test_eval_of_a_teacher_run_says_whether_other_data_is_new_samples_or_a_new_teacher(cli, tmp_path):
    code, _, err = cli(*QUIET, "data=teacher", "hydra.run.dir=outputs/teacher")
    assert code == 0, err[-3000:]
    ckpt = tmp_path / "outputs/teacher/checkpoints/final.ckpt"
    for override, kind, note in [
        ("data.seed=1", "new_samples", "note: data.seed=1: new samples of the teacher this model learned "
                                       "(data.teacher_seed=0)"),
        ("data.teacher_seed=1", "new_teacher", "note: data.teacher_seed=1: a new teacher, not the one this model "
                                               "learned"),
    ]:
        code, out, err = evaluate(cli, f"ckpt_path={ckpt}", override)
        assert code == 0, err[-3000:]
        written = ckpt.with_name(f"final.eval.{kind}.{override}.json")
        assert f"wrote {written}" in err and note in err
        # (in this process, after a training, Lightning's "GPU available" lines reach stdout first)
        assert json.loads(written.read_text()) == json.loads(out[out.index("{"):])


@pytest.mark.slow  # trains in this process
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize(("precision", "dtype"), [("16-mixed", torch.float32), ("bf16-mixed", torch.float32),
                                                  ("bf16-true", torch.bfloat16), ("64-true", torch.float64)])
def test_gpu_precisions_run(cli, tmp_path, precision, dtype):
    code, _, err = cli(*QUIET, "trainer=gpu", f"trainer.precision={precision}", f"hydra.run.dir={RUN}")
    assert code == 0, err[-3000:]
    assert weights(tmp_path / RUN).dtype == dtype and "train/loss" in metrics(tmp_path / RUN)
