"""What a person sees of a run without digging: the console (in a file and on a terminal), the
TensorBoard server's runs, cards and HPARAMS view of a sweep, and the report's wall time."""

import csv
import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import urllib.request

import pytest

from primer.cli.train import fit_run
from tests.conftest import TINY

QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def run_dirs(cwd, kind="runs"):
    return list((cwd / "outputs" / kind).iterdir())


def test_console_shows_the_loss_a_readable_summary_and_where_the_run_is(make_config, tmp_path, capsys, caplog):
    caplog.set_level("INFO", logger="lightning.pytorch")
    metrics, _ = fit_run(make_config(*TINY, "model=custom_relu"))
    out = capsys.readouterr().out
    summary = caplog.text
    assert "| TwoLayerNet |" in summary and "| MSELoss " in summary  # full class names, rich installed or not
    assert "Metric" not in summary and "train_metrics" not in summary
    # stdout is not a terminal under pytest: plain progress lines, the last step's loss among them
    assert f"step 6/6  train/loss {metrics['train/loss']:.4g}\n" in out and "\r" not in out
    last = out.rstrip("\n").splitlines()[-6:]
    assert last == ["done: 6 steps in " + last[0].split(" in ")[1],
                    f"  train/loss  {metrics['train/loss']:.4g}",
                    f"  val/loss    {metrics['val/loss']:.4g}",
                    f"  val/r2      {metrics['val/r2']:.4g}",
                    f"  run dir     {tmp_path / 'run'}",
                    f"  tensorboard --logdir {tmp_path / 'run'}"]
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert last[0] == f"done: 6 steps in {run['wall_time_s']:.1f} s" and run["steps"] == 6


@pytest.mark.slow  # trains in this process
def test_each_live_bar_holds_its_own_shown_values():
    from primer.run.console import LiveBar

    first, second = LiveBar(), LiveBar()
    assert first.shown == {} and first.shown is not second.shown  # a class default would be one dict for all


def test_a_run_of_one_step_says_one_step(cli):
    code, out, err = cli(*TINY, *QUIET, "trainer.fast_dev_run=true")  # Lightning's quick check: one step
    assert code == 0, err[-3000:]
    assert re.search(r"^done: 1 step in \d+\.\d s$", out, re.MULTILINE), out


@pytest.mark.slow  # trains in this process
@pytest.mark.parametrize(("length", "shown"), [
    (["trainer.max_steps=-1", "trainer.max_epochs=2", "data.steps=3"], "step 6/6  train/loss "),  # Lightning's count
    # a run that only max_time ends has no count to show
    (["trainer.max_steps=-1", "trainer.max_time=00:00:00:01", "trainer.max_epochs=null"], "step 1  train/loss "),
])
def test_progress_lines_count_to_the_steps_lightning_will_take(make_config, capsys, length, shown):
    fit_run(make_config(*TINY, *length))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step ")]
    assert any(line.startswith(shown) for line in lines), lines
    assert not any("/-1" in line for line in lines), lines


@pytest.mark.slow
def test_default_command_to_a_file_ends_with_the_loss_and_the_run_dir(tmp_path):
    with open(tmp_path / "log", "w") as log:
        result = subprocess.run([sys.executable, "-m", "primer.train"], cwd=tmp_path, stdout=log,
                                stderr=subprocess.STDOUT, timeout=600)
    text = (tmp_path / "log").read_text()
    assert result.returncode == 0, text[-3000:]
    (run_dir,) = run_dirs(tmp_path)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    lines = text.splitlines()
    assert lines[-5:-3] == [f"  train/loss  {metrics['train/loss']:.4g}", f"  val/loss    {metrics['val/loss']:.4g}"]
    assert lines[-2:] == [f"  run dir     {run_dir.relative_to(tmp_path)}",
                          f"  tensorboard --logdir {run_dir.relative_to(tmp_path)}"]
    assert lines[-7] == "`Trainer.fit` stopped: `max_steps=500` reached."  # on its own line
    assert "\r" not in text and "Sanity Checking" not in text and "Validation" not in text
    assert [line for line in lines if line.startswith("step ")][-1].startswith("step 500/500  train/loss ")
    assert len(lines) < 45  # a screen: no redraw wall


@pytest.mark.slow
def test_diverged_run_on_a_terminal_says_why_on_a_fresh_line(tmp_path):
    """On a terminal the bar is live; when training stops, its line ends before the reason."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a 120-column window
    # diverges at step 3 (tests/test_reliability.py), between logging steps; the bar redraws every 50 steps
    proc = subprocess.Popen([sys.executable, "-m", "primer.train", *TINY, "trainer.max_steps=50", "optimizer.lr=10"],
                            cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower)
    os.close(follower)
    chunks = []
    while True:  # until the child closes the terminal
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the other end is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=300) == 3
    screen = b"".join(chunks).decode()
    assert "Epoch 0:" in screen  # the live bar, not the plain lines
    before, reason = screen.split("error: training diverged: ", 1)
    assert before.endswith("\n"), before[-200:]
    # redrawn at the step it stopped: the logging step after the bad one, where the loss is read
    assert re.search(r"Epoch 0: [^\r\n]*\| 4/50 \[", before), before[-300:]
    assert reason.startswith("train/loss is inf at step 3 of 50")


@pytest.mark.slow
def test_report_takes_the_wall_time_the_run_measured_not_file_times(tmp_path):
    def run(*args):
        result = subprocess.run([sys.executable, "-m", *args], cwd=tmp_path, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    run("primer.train", *TINY, *QUIET)
    (run_dir,) = run_dirs(tmp_path)
    run("primer.eval", f"ckpt_path={run_dir / 'checkpoints' / 'final.ckpt'}")  # writes final.eval.json later
    run("primer.sweeps.report", str(run_dir))
    with open(run_dir / "summary.csv") as f:
        (row,) = csv.DictReader(f)
    measured = json.loads((run_dir / "run.json").read_text())
    assert float(row["wall_time_s"]) == round(measured["wall_time_s"], 2)
    # file times would have counted the eval process too
    since_config = (run_dir / "checkpoints" / "final.eval.json").stat().st_mtime - \
        (run_dir / ".hydra" / "config.yaml").stat().st_mtime
    assert float(row["wall_time_s"]) < since_config


def _get(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


@pytest.fixture
def tensorboard_of(tmp_path):
    """Starts `tensorboard --logdir DIR` on a free port of 127.0.0.1; returns its URL; stops it after."""
    servers = []

    def start(logdir):
        server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host",
                                   "127.0.0.1", "--port", "0", "--load_fast=false", "--reload_interval=1"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        servers.append(server)
        for line in server.stderr:  # it says where it listens once it does
            if match := re.search(r"http://127\.0\.0\.1:(\d+)/", line):
                return f"http://127.0.0.1:{match.group(1)}"
        raise AssertionError("tensorboard ended without serving")

    yield start
    for server in servers:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_tensorboard_shows_a_sweep_by_job_dir_with_what_it_varied_first(tmp_path, tensorboard_of):
    """Names lead with what varied (docs/configuration.md#output-paths); HPARAMS ticks the keys that differ
    and lists the losses first (primer.run.dashboard), for a sweep dir and for outputs/ as a whole."""
    sweep = ["model=two_layer,sequential", "optimizer.lr=1e-4,1e-3"]  # both nets have the same keys
    result = subprocess.run([sys.executable, "-m", "primer.train", "-m", *sweep, *TINY, *QUIET], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep_dir,) = run_dirs(tmp_path, "multirun")
    assert re.fullmatch(r"\d{4}-\d{6}_\d+_model_lr", sweep_dir.name)  # when, which process, what it varies
    assert result.stdout.rstrip().endswith(f"tensorboard --logdir {sweep_dir.relative_to(tmp_path)}")
    jobs = sorted(d.name for d in sweep_dir.iterdir() if (d / ".hydra").is_dir())
    # the values the sweep varies, whole; TINY's fixed overrides are in each job's .hydra/overrides.yaml
    assert jobs == ["0_two_layer_lr0.0001", "1_two_layer_lr0.001", "2_sequential_lr0.0001", "3_sequential_lr0.001"]

    url = tensorboard_of(sweep_dir)
    runs = _get(f"{url}/data/runs")
    while set(jobs) - set(runs):  # the server loads the event files in the background: wait for all
        runs = _get(f"{url}/data/runs")
    assert set(runs) == set(jobs) | {"."}  # each job by its dir, and the sweep's HPARAMS experiment
    tags = _get(f"{url}/data/plugin/scalars/tags")
    for job in jobs:
        assert {"train/loss", "val/loss", "val/r2", "log10_loss/train"} <= set(tags[job]) and "epoch" not in tags[job]

    experiment = _get(f"{url}/data/plugin/hparams/experiment", {"experimentName": ""})
    columns = [(h["name"], h.get("differs", False)) for h in experiment["hparamInfos"]]
    assert columns[:2] == [("model", True), ("optimizer.lr", True)]  # the swept keys, ticked first
    assert not any(differs for _, differs in columns[2:])
    assert {"trainer.log_every_n_steps", "data.input_dim", "seed"} <= {name for name, _ in columns}
    metrics = [m["name"]["tag"] for m in experiment["metricInfos"]]
    assert metrics[:3] == ["train/loss", "val/loss", "val/r2"]  # the first of the 5 TensorBoard ticks
    assert {"log10_loss/train", "log10_loss/val", "train/explained_variance"} <= set(metrics)

    groups = _get(f"{url}/data/plugin/hparams/session_groups", {
        "experimentName": "", "allowedStatuses": ["STATUS_SUCCESS"], "startIndex": 0, "sliceSize": 10,
        "colParams": [{"hparam": "experiment"}, {"metric": {"tag": "train/loss"}}]})["sessionGroups"]
    # the Trial ID column: the values first, then the sweep and the job's number
    assert sorted(g["name"] for g in groups) == sorted(
        f"{job.partition('_')[2]} {sweep_dir.name}/{job.partition('_')[0]}" for job in jobs)
    for group in groups:
        assert "experiment" not in group["hparams"]  # null: an empty cell, not "None"
        (session,) = group["sessions"]
        job = json.loads((sweep_dir / session["name"] / "metrics.json").read_text())
        (loss,) = [m["value"] for m in group["metricValues"] if m["name"]["tag"] == "train/loss"]
        assert loss == pytest.approx(job["train/loss"])

    # outputs/ as a whole: the sweep's jobs and a single run beside them, each a run, none empty
    single = subprocess.run([sys.executable, "-m", "primer.train", *TINY, *QUIET, "optimizer.lr=3e-4", "seed=1"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    (run_dir,) = run_dirs(tmp_path)
    assert re.fullmatch(r"max_steps6_log_every_n_steps2_input_dim8_hidden_dim4_enable_progress_bar-false_"
                        r"enable_model_summary-false_lr3e-4_seed1_\d{4}-\d{6}_\d+", run_dir.name)
    url = tensorboard_of(tmp_path / "outputs")
    expected = {str(d.relative_to(tmp_path / "outputs")) for d in [*(sweep_dir / j for j in jobs), run_dir]}
    runs = _get(f"{url}/data/runs")
    while expected - set(runs):
        runs = _get(f"{url}/data/runs")
    assert set(runs) == expected | {".", str(sweep_dir.relative_to(tmp_path / "outputs"))}
    tags = _get(f"{url}/data/plugin/scalars/tags")
    assert all("log10_loss/train" in tags[run] for run in expected)
    experiment = _get(f"{url}/data/plugin/hparams/experiment", {"experimentName": ""})
    differing = [h["name"] for h in experiment["hparamInfos"] if h.get("differs")]
    # outputs/'s own experiment, not the sweep's: seed differs here; data.seed only follows it
    assert differing == ["model", "optimizer.lr", "seed"]
    groups = _get(f"{url}/data/plugin/hparams/session_groups", {
        "experimentName": "", "allowedStatuses": ["STATUS_SUCCESS"], "startIndex": 0, "sliceSize": 10,
        "colParams": [{"hparam": "seed"}]})["sessionGroups"]
    assert run_dir.name in {g["name"] for g in groups}
