"""The files a run writes beside its checkpoints: what the sweep report reads, what a run again replaces."""

METRICS_FILE = "metrics.json"  # the last value of every logged metric (primer.run.results.RunSummary)
RUN_FILE = "run.json"  # when and how long the run ran, and what besides its config decided its bits
FAILURE_FILE = "failure.txt"  # why the run stopped (primer.cli.task)
PRUNED_FILE = "pruned.txt"  # an Optuna trial stopped early by its pruner (primer.sweeps.pruning)
INTERRUPTED_FILE = "interrupted.txt"  # a sweep job stopped by Ctrl-C or SIGTERM: where, and what it saved
# each describes one run; hparams.yaml is Lightning's TensorBoardLogger's
RUN_RECORDS = (METRICS_FILE, RUN_FILE, "hparams.yaml", FAILURE_FILE, PRUNED_FILE, INTERRUPTED_FILE)
EVENT_FILES = "events.out.tfevents.*"
INTERRUPTED = "interrupted.ckpt"  # in checkpoints/: what SaveOnInterrupt saves (primer.run.guards)
EXPERIMENT_FILE = "events.out.tfevents.primer-hparams"  # HPARAMS' columns, in the logdir (primer.run.experiment)
