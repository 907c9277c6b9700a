"""Scaling out for real: DDP processes on the CPU (gloo), and sweeps through submitit's local executor.

Each CLI run here starts real processes (~5 s of imports each), so sizes are tiny and the
1-process reference runs in-process.
"""

import csv
import json

import pytest
import torch

from primer.run.data import shard
from primer.exits import BadConfig
from primer.sweeps.report import job_dirs
from primer.cli.train import fit_run
from tests.conftest import QUIET, TINY, read_checkpoint, run_cli

SMALL = [*TINY, *QUIET]


def weights(run_dir):
    state = read_checkpoint(run_dir / "checkpoints" / "final.ckpt")["state_dict"]
    return {k: v for k, v in state.items() if k.startswith("net.")}


def assert_same_training(run_dir, reference_dir, reference_metrics):
    """The run's final metrics and weights are those of the 1-process reference run."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics.keys() == reference_metrics.keys()
    for key in ("train/loss", "val/loss"):
        assert metrics[key] == pytest.approx(reference_metrics[key], rel=1e-5)
    assert metrics == pytest.approx(reference_metrics, rel=1e-4, abs=1e-6)
    ours, reference = weights(run_dir), weights(reference_dir)
    assert ours.keys() == reference.keys()
    for key in ours:
        torch.testing.assert_close(ours[key], reference[key], rtol=1e-5, atol=1e-6)


def test_shard_gives_each_rank_disjoint_rows_that_together_are_the_batch():
    batch = (torch.arange(7.0).unsqueeze(1), torch.arange(7.0).unsqueeze(1) * 10)
    shards = [shard(batch, rank, 3) for rank in range(3)]
    assert [len(x) for x, _ in shards] == [3, 2, 2]
    assert torch.equal(torch.cat([x for x, _ in shards]), batch[0])
    assert all(torch.equal(y, x * 10) for x, y in shards)  # rows stay paired
    with pytest.raises(ValueError):
        shard(batch, 0, 8)


@pytest.mark.slow
def test_two_ddp_processes_train_like_one_process_and_leave_one_run_dir(make_config, tmp_path):
    """data.batch_size=7 is the global batch, split 4 + 3; were rows duplicated, losses would double."""
    overrides = [*SMALL, "data.batch_size=7"]
    reference, _ = fit_run(make_config(*overrides, subdir="one"))

    done = run_cli("trainer=ddp_cpu", "trainer.devices=2", *overrides, cwd=tmp_path / "ddp")
    assert done.returncode == 0, done.stderr[-3000:]

    runs = list((tmp_path / "ddp" / "outputs" / "runs").iterdir())
    assert len(runs) == 1  # the relaunched rank joined the first process's run dir
    run_dir = runs[0]
    # rank 1 writes only its console log; config, events, metrics and checkpoint are rank 0's
    events = list(run_dir.glob("events.out.tfevents.*"))
    assert len(events) == 1
    assert {p.name for p in run_dir.iterdir()} == {
        ".hydra", events[0].name, "hparams.yaml", "checkpoints", "metrics.json", "run.json", "train.log",
        "train_ddp_process_1.log"}
    assert_same_training(run_dir, tmp_path / "one", reference)


@pytest.mark.slow
def test_submitit_local_sweep_runs_each_job_with_its_own_results(make_config, tmp_path):
    done = run_cli("-m", "hydra/launcher=local", "seed=0,1", *SMALL, cwd=tmp_path / "sweep")
    assert done.returncode == 0, done.stderr[-3000:]

    jobs, rows = seed_jobs_train_as_lone_runs(make_config, tmp_path)
    assert [(r["job"], r["status"]) for r in rows] == [(job.name, "ok") for job in jobs]
    for row, job in zip(rows, jobs):
        assert float(row["train/loss"]) == json.loads((job / "metrics.json").read_text())["train/loss"]


@pytest.mark.slow
def test_sweep_of_ddp_jobs_runs_each_job_as_two_submitit_tasks(make_config, tmp_path):
    """The hand-gradient net (gradients all-reduced by hand) on held-out teacher data, two global batch sizes."""
    fixed = [*SMALL, "model=manual", "optimizer.lr=1e-6", "data=teacher", "data.val_size=5"]
    done = run_cli("-m", "hydra/launcher=local", "hydra.launcher.tasks_per_node=2", "trainer=ddp_cpu",
                   "data.batch_size=6,9", *fixed, cwd=tmp_path / "sweep")
    assert done.returncode == 0, done.stderr[-3000:]

    (sweep_dir,) = (tmp_path / "sweep" / "outputs" / "multirun").iterdir()
    jobs = job_dirs(sweep_dir)
    assert [job.name.partition("_")[0] for job in jobs] == ["0", "1"]  # one dir per job, not per task
    for job, (job_dir, batch_size) in enumerate(zip(jobs, (6, 9), strict=True)):
        reference, _ = fit_run(make_config(*fixed, f"data.batch_size={batch_size}", subdir=f"one{job}"))
        assert_same_training(job_dir, tmp_path / f"one{job}", reference)


@pytest.mark.slow
def test_basic_sweep_of_ddp_spawn_jobs_runs_each_job_as_two_processes(make_config, tmp_path):
    """ddp_spawn starts each job's processes from the job itself, so the basic launcher can sweep it
    (as lightning-hydra-template's test_hydra_sweep_ddp_sim does); each job trains as one process would."""
    done = run_cli("-m", "seed=0,1", "trainer=ddp_cpu", "trainer.devices=2", "trainer.strategy=ddp_spawn", *SMALL,
                   cwd=tmp_path / "sweep")
    assert done.returncode == 0, done.stderr[-3000:]

    _, rows = seed_jobs_train_as_lone_runs(make_config, tmp_path)
    assert [r["status"] for r in rows] == ["ok", "ok"]


def seed_jobs_train_as_lone_runs(make_config, tmp_path) -> tuple[list, list[dict]]:
    """The jobs of a `seed=0,1` sweep made in tmp_path/sweep, each checked against the same run alone;
    returns them and the sweep summary's rows."""
    (sweep_dir,) = (tmp_path / "sweep" / "outputs" / "multirun").iterdir()
    jobs = job_dirs(sweep_dir)
    for seed, job_dir in zip((0, 1), jobs, strict=True):
        reference, _ = fit_run(make_config(*SMALL, f"seed={seed}", subdir=f"seed{seed}"))
        assert_same_training(job_dir, tmp_path / f"seed{seed}", reference)
    with open(sweep_dir / "summary.csv") as f:
        return jobs, list(csv.DictReader(f))


CLUSTERS = ["NODE_RANK", "SUBMITIT_EXECUTOR", "SLURM_NTASKS", "SLURM_JOB_NAME", "TORCHELASTIC_RUN_ID", "LSB_JOBID",
            "LSB_DJOB_RANKFILE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"]


def test_several_nodes_with_nothing_to_start_them_stop_up_front(make_config, monkeypatch):
    """Checked directly: where the check is missing, the command would not fail but wait forever."""
    from primer.checks.scaleout import check_scale_out

    for name in CLUSTERS:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(BadConfig) as refused:
        check_scale_out(make_config("trainer.num_nodes=2"), multirun=False)
    assert str(refused.value).startswith("trainer.num_nodes=2: nothing starts the other nodes here, so this run would "
                                         "wait for them forever; run it under SLURM (srun, or -m hydra/launcher=slurm ")
    check_scale_out(make_config("trainer.num_nodes=2", "hydra/launcher=slurm", "hydra.launcher.nodes=2"),
                    multirun=True)  # a submitit sweep starts them


@pytest.mark.parametrize("environment", [{"NODE_RANK": "1", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"},
                                         {"SLURM_NTASKS": "2", "SLURM_JOB_NAME": "train"}],
                         ids=["by-hand", "slurm"])
def test_several_nodes_pass_where_lightning_finds_them_started(make_config, monkeypatch, environment):
    from primer.checks.scaleout import check_scale_out

    for name in CLUSTERS:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    check_scale_out(make_config("trainer.num_nodes=2"), multirun=False)  # raises BadConfig if refused


UNSUPPORTED = [
    (["-m", "trainer=ddp_cpu", "seed=0,1"], "trainer.devices=2: a sweep of the basic launcher runs its jobs in"),
    (["-m", "hydra/launcher=joblib", "trainer=ddp_cpu", "seed=0,1"],
     "trainer.devices=2: a sweep of the joblib launcher runs its jobs in joblib's worker processes"),
    (["-m", "hydra/launcher=local", "trainer=ddp_cpu", "seed=0,1"],
     "hydra.launcher.tasks_per_node=1: a submitit job starts one task per training process"),
    (["-m", "hydra/launcher=slurm", "hydra.launcher.tasks_per_node=4", "seed=0,1"],
     "hydra.launcher.tasks_per_node=4: a submitit job starts one task per training process"),
    (["trainer=ddp_cpu", "trainer.devices=4", "data.batch_size=3"],
     "data.batch_size=3: each of the 4 DDP processes needs at least one row"),
]


@pytest.mark.parametrize(("argv", "message"), UNSUPPORTED, ids=["basic+ddp", "joblib+ddp", "local+ddp-1-task",
                                                                "slurm-4-tasks",
                                                                "batch<ranks"])
def test_unsupported_launcher_and_process_combinations_stop_up_front(cli, tmp_path, argv, message):
    code, _, err = cli(*argv)
    assert code == 2 and err.startswith(f"error: {message}") and err.count("\n") == 1, err[-2000:]
    assert not (tmp_path / "outputs").exists()

