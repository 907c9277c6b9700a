"""primer's Optuna sweeper (src/hydra_plugins/primer_optuna_sweeper): Hydra's sweep syntax as Optuna
distributions, studies named after what changes results, every storage (SQLite, JournalStorage, a real
PostgreSQL server) shared by searches started together, and pruning. The sweeper's mechanics run a toy
task (tests/optuna_app.py); what needs a training runs primer.train."""

import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import optuna
import pytest
from hydra import compose, initialize_config_dir
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState
from packaging.version import Version

from hydra_plugins.primer_optuna_sweeper._space import grid, search_space
from primer.config import CONFIG_DIR, CONFIG_NAME
from primer.sweeps.report import job_dirs
from tests.conftest import QUIET, TINY, cli_env
from tests.test_sweeps import summary_rows

APP = str(Path(__file__).with_name("optuna_app.py"))
SWEEPER = ["hydra/sweeper=primer_optuna", "hydra.sweeper.n_jobs=1"]


def test_optuna_4_and_sqlalchemy_2_are_what_the_dev_extra_installs():
    assert Version(version("optuna")) >= Version("4") and Version(version("sqlalchemy")) >= Version("2")


def test_ranges_mean_what_they_mean_in_hydra():
    space, fixed = search_space(["seed=range(1,4)", "a=range(0,10,3)", "b=range(0.5,1.0,0.25)", "c=choice(x,y)",
                                 "d=tag(log,interval(1e-5,1e-2))", "e=interval(1,8)", "f=7"])
    assert space["seed"] == IntDistribution(1, 3)  # 1, 2, 3: the end is left out, as in Hydra's grid
    assert space["a"] == IntDistribution(0, 9, step=3)
    assert space["b"] == FloatDistribution(0.5, 0.75, step=0.25)
    assert space["c"] == CategoricalDistribution(["x", "y"])
    assert space["d"] == FloatDistribution(1e-5, 1e-2, log=True)
    assert space["e"] == FloatDistribution(1.0, 8.0)  # Hydra's interval is one of floats
    assert fixed == {"f": "7"}
    assert grid({k: space[k] for k in ("seed", "a", "b")}) == {"seed": [1, 2, 3], "a": [0, 3, 6, 9], "b": [0.5, 0.75]}


def test_each_of_hydras_sweep_forms_gives_the_distribution_hydra_documents_for_optuna():
    """hydra-optuna-sweeper's docs: interval is a FloatDistribution, cast to int an IntDistribution; range an
    IntDistribution (a FloatDistribution where an end or the step is a float); choice and a,b categorical."""
    space, _ = search_space(["a=int(interval(8,64))", "b=tag(log,int(interval(8,64)))",
                             "c=int(tag(log,interval(8,64)))", "d=tag(log,interval(1,10))", "e=choice(25,50)",
                             "f=25,50", "g=range(8,64,8)", "h=shuffle(range(1,4))"])
    assert space["a"] == IntDistribution(8, 64)  # model.hidden_dim=int(interval(8,64)) draws integers
    assert space["b"] == space["c"] == IntDistribution(8, 64, log=True)
    assert space["d"] == FloatDistribution(1.0, 10.0, log=True)
    assert space["e"] == space["f"] == CategoricalDistribution([25, 50])
    assert space["g"] == IntDistribution(8, 56, step=8)
    assert isinstance(space["h"], CategoricalDistribution) and sorted(space["h"].choices) == [1, 2, 3]


def toy_search(tmp_path, *args, cwd=None):
    """Runs the toy app's search to its end; returns its output."""
    proc = subprocess.run([sys.executable, APP, "-m", *SWEEPER, *args], cwd=cwd or tmp_path, env=cli_env(),
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def only_study(storage):
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage)


@pytest.mark.slow
def test_a_grid_over_a_range_runs_each_value_once(tmp_path):
    storage = f"sqlite:///{tmp_path}/o.db"
    toy_search(tmp_path, "x=range(1,4)", "hydra/sweeper/sampler=grid", "hydra.sweeper.n_trials=10",
               f"hydra.sweeper.storage={storage}", "hydra.sweeper.study_name=grid")
    assert sorted(t.params["x"] for t in only_study(storage).trials) == [1, 2, 3]


@pytest.mark.slow
def test_a_multi_objective_search_keeps_the_pareto_front(tmp_path):
    toy_search(tmp_path, "objectives=2", "x=interval(-4.0,4.0)", "hydra/sweeper/sampler=nsgaii",
               "hydra.sweeper.direction=[minimize,minimize]", "hydra.sweeper.n_trials=6",
               "hydra.sweeper.sampler.seed=0", "hydra.sweeper.storage=sqlite:///o.db", "hydra.sweeper.study_name=two",
               "hydra.sweep.dir=sweep")
    study = optuna.load_study(study_name="two", storage=f"sqlite:///{tmp_path}/o.db")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 6
    assert all(t.values == pytest.approx([(t.params["x"] - 2) ** 2, abs(t.params["x"])]) for t in study.trials)
    results = (tmp_path / "sweep" / "optimization_results.yaml").read_text()
    assert results.count("values:") == len(study.best_trials) >= 1


def start_toy(cwd, *args):
    return subprocess.Popen([sys.executable, APP, "-m", *SWEEPER, *args], cwd=cwd, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_all(procs):
    outputs = [proc.communicate(timeout=300) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * len(procs), [err[-3000:] for _, err in outputs]
    return [out + err for out, err in outputs]


@pytest.mark.slow
def test_two_searches_started_together_share_one_study_in_a_journal_file(tmp_path):
    storage = "journal:///studies/optuna.log"  # relative to where the command runs, in a folder not made yet
    args = ["x=interval(-4.0,4.0)", "y=choice(0,1)", "hydra.sweeper.n_trials=4", "hydra.sweeper.sampler.seed=0",
            f"hydra.sweeper.storage={storage}", "hydra.sweeper.study_name=shared"]
    outputs = finish_all([start_toy(tmp_path, *args, f"hydra.sweep.dir=s{i}") for i in range(2)])
    assert sorted("search 2 on it, sampler seed 1" in out for out in outputs) == [False, True]
    journal = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "studies" / "optuna.log")))
    study = optuna.load_study(study_name="shared", storage=journal)
    assert sorted(t.number for t in study.trials) == list(range(8))
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert len({t.params["x"] for t in study.trials}) == 8  # two seeds: no trial drawn twice


def study_name(*overrides):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(CONFIG_NAME, overrides=["hparams_search=optuna", *overrides], return_hydra_config=True)
    return cfg.hydra.sweeper.study_name


def test_overrides_that_change_no_result_keep_the_study():
    name = study_name("trainer.max_steps=6", "data.input_dim=8")
    assert name.startswith("primer:data.input_dim=8,trainer.max_steps=6 space:")
    cosmetic = ["logger=csv", "callbacks=none", "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1",
                "paths.output_dir=elsewhere", "hydra.sweep.dir=elsewhere", "hydra.sweeper.n_trials=3"]
    assert study_name("data.input_dim=8", *cosmetic, "trainer.max_steps=6") == name
    # settings that change results, the search space and the direction each name another study
    others = [study_name("trainer.max_steps=7", "data.input_dim=8"),
              study_name("trainer.max_steps=6", "data.input_dim=8", "seed=1"),
              study_name("trainer.max_steps=6", "data.input_dim=8", "hydra.sweeper.params.optimizer='choice(adam)'"),
              study_name("trainer.max_steps=6", "data.input_dim=8", "hydra.sweeper.direction=maximize")]
    assert len({name, *others}) == 5


SEARCH = ["hparams_search=optuna", *TINY[:3], *QUIET]  # the search draws optimizer, lr and hidden_dim


def search(cwd, *args):
    return subprocess.Popen([sys.executable, "-m", "primer.train", "-m", *SEARCH, *args], cwd=cwd, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc):
    out, err = proc.communicate(timeout=600)
    assert proc.returncode in (0, 4), err[-3000:]  # 4: a drawn lr may diverge; the trial is then failed
    return out + err


def test_the_median_pruner_prunes_nothing_before_five_trials_have_finished():
    """Why a 6-trial search with pruner=median prunes at most its 6th trial (docs/sweeps.md, Pruning)."""
    from hydra_plugins.primer_optuna_sweeper.config import PRUNERS

    name, kwargs = PRUNERS["median"]
    study = optuna.create_study(pruner=getattr(optuna.pruners, name)(**kwargs))
    verdicts = []
    for number in range(6):
        trial = study.ask()
        trial.report(100.0 * (number + 1), step=2)  # each trial worse than every one before it
        verdicts.append(trial.should_prune())
        study.tell(trial, 100.0 * (number + 1))
    assert verdicts == [False] * 5 + [True]


@pytest.mark.slow
def test_the_documented_short_search_prunes_and_never_at_the_last_step(tmp_path):
    proc = search(tmp_path, "hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_startup_trials=2",
                  "hydra.sweeper.n_trials=6", "trainer.val_check_interval=2", "hydra.sweep.dir=sweep")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    study = only_study(f"sqlite:///{tmp_path}/outputs/optuna.db")
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned and all(t.number >= 2 and max(t.intermediate_values) < 6 for t in pruned)
    # a trial that reached its last validation completes: its value is the study's to compare
    assert all(t.state == TrialState.COMPLETE and max(t.intermediate_values) == 6 for t in study.trials
               if t not in pruned)
    assert re.search(r"^#\d+ .*  pruned: at step 2 of 6: val/loss", out, re.MULTILINE)


@pytest.mark.slow
def test_an_int_interval_search_runs_and_its_lines_show_the_drawn_values_rounded(tmp_path):
    proc = search(tmp_path, "model.hidden_dim=int(interval(8,64))", "hydra.sweeper.n_trials=2", "hydra.sweep.dir=s")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]  # every trial gets an integer hidden_dim
    study = only_study(f"sqlite:///{tmp_path}/outputs/optuna.db")
    assert all(t.state == TrialState.COMPLETE and isinstance(t.params["model.hidden_dim"], int) for t in study.trials)
    assert study.metric_names == ["val/loss"]  # optuna-dashboard's axis, not "Objective 0"
    lines = [line for line in out.splitlines() if line.startswith("#")]
    assert len(lines) == 2
    for line, trial in zip(lines, study.trials):
        lr = trial.params["optimizer.lr"]
        drawn = f"optimizer={trial.params['optimizer']} optimizer.lr={lr:.4g} " \
                f"model.hidden_dim={trial.params['model.hidden_dim']}"
        assert line.startswith(f"#{trial.number} {drawn}  train/loss ")  # the fixed overrides are said once
    assert "every trial: hparams_search=optuna trainer.max_steps=6" in out + err
    assert f"Best of study '{study.study_name}': val/loss {study.best_value:.4g} at trial {study.best_trial.number}: " \
           in out + err
    summary = (tmp_path / "s/summary.md").read_text().splitlines()
    assert summary[2].startswith(f"| 0 | `{lines[0].split('  ')[0].removeprefix('#0 ')}` | ok | 6 |")
    assert summary[0].count("|") == summary[1].count("|")
    csv_overrides = [r["overrides"] for r in summary_rows(tmp_path / "s")]
    assert f"optimizer.lr={study.trials[0].params['optimizer.lr']}" in csv_overrides[0]  # every digit, every override
    assert "trainer.max_steps=6" in csv_overrides[0]


@pytest.mark.slow
def test_a_study_continues_across_commands_whatever_they_show_or_write(tmp_path):
    first = finish(search(tmp_path, "hydra.sweeper.n_trials=2"))
    # the same search again, shown and written differently: the same study, two more trials
    second = finish(search(tmp_path, "hydra.sweeper.n_trials=2", "logger=csv", "trainer.log_every_n_steps=1",
                           "hydra.sweep.dir=elsewhere"))
    assert "search 1 on it, sampler seed 0" in first and "search 2 on it, sampler seed 1" in second
    study = only_study(f"sqlite:///{tmp_path}/outputs/optuna.db")
    assert [t.number for t in study.trials] == [0, 1, 2, 3] and all(t.state.is_finished() for t in study.trials)
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 4  # the second search drew anew


@pytest.mark.slow
def test_pruning_stops_a_hopeless_trial_early_and_the_sweep_says_pruned(tmp_path):
    # median pruner after one trial; val/loss reported every 2 of 6 steps; lr 1e-6 lags lr 1e-3 from step 2
    proc = search(tmp_path, "hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_startup_trials=1",
                  "hydra.sweeper.n_trials=4", "optimizer=adam", "optimizer.lr=choice(1e-6,1e-3)", "model.hidden_dim=4",
                  "trainer.val_check_interval=2", "hydra.sweep.dir=sweep")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]  # pruned is not failed: no exit code 4
    study = only_study(f"sqlite:///{tmp_path}/outputs/optuna.db")
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned and all(max(t.intermediate_values) < 6 for t in pruned)
    assert all(t.params["optimizer.lr"] == 1e-6 for t in pruned)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert complete and all(sorted(t.intermediate_values) == [2, 4, 6] for t in complete)
    rows = {r["job"]: r for r in summary_rows(tmp_path / "sweep")}
    for trial, job in zip(study.trials, job_dirs(tmp_path / "sweep")):
        row = rows[job.name]
        if trial.state == TrialState.PRUNED:
            step = max(trial.intermediate_values)
            assert row["status"] == "pruned" and row["reason"].startswith(f"at step {step} of 6: val/loss")
            assert int(row["steps"]) == step  # the job stopped there and saved its checkpoint
        else:
            assert row["status"] == "ok" and int(row["steps"]) == 6
    assert "| pruned: at step " in out


class PostgreSQL:
    """A real PostgreSQL server from Debian's package, in a temporary dir, on a free port; stop() and start()."""

    def __init__(self, bin_dir: Path):
        self.bin_dir, self.root = bin_dir, Path(tempfile.mkdtemp(prefix="primer-pg-"))
        # initdb refuses to run as root: the server then runs as the package's postgres user
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.root, "postgres")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.data = self.root / "data"
        subprocess.run([*self.as_user, bin_dir / "initdb", "-D", self.data, "-U", "primer", "--auth=trust", "-E",
                        "UTF8"], check=True, capture_output=True)
        self.url = f"postgresql+psycopg://primer@127.0.0.1:{self.port}/postgres"

    def start(self):
        subprocess.run([*self.as_user, self.bin_dir / "pg_ctl", "-D", self.data, "-l", self.root / "server.log", "-w",
                        "start", "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"],
                       check=True, capture_output=True)

    def stop(self, check=True):
        subprocess.run([*self.as_user, self.bin_dir / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"],
                       capture_output=True, check=check)

    def new_database(self, name: str) -> str:
        """The URL of a new, empty database on this server: a study of its own."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=primer dbname=postgres", autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="module")
def postgresql_server():
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    server = PostgreSQL(Path(bins[-1]).parent)
    server.start()
    try:
        yield server
    finally:
        server.stop(check=False)
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="module")
def postgresql(postgresql_server):
    """The URL of a real PostgreSQL server's default database."""
    return postgresql_server.url


@pytest.mark.slow
def test_two_searches_started_together_share_one_study_on_postgresql(tmp_path, postgresql):
    procs = [search(tmp_path, "hydra.sweeper.n_trials=3", f"hydra.sweeper.storage={postgresql}") for _ in range(2)]
    outputs = [finish(proc) for proc in procs]
    assert sorted("search 2 on it, sampler seed 1" in out for out in outputs) == [False, True]
    study = only_study(postgresql)
    assert sorted(t.number for t in study.trials) == list(range(6))
    assert all(t.state.is_finished() for t in study.trials)
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 6  # two seeds: no trial drawn twice


def test_a_pruner_without_a_storage_stops_the_search_in_one_line(cli, tmp_path):
    code, _, err = cli("-m", "hparams_search=optuna", "hydra/sweeper/pruner=median", "hydra.sweeper.storage=null")
    assert code == 2 and err == ("error: hydra.sweeper.pruner: a pruner needs hydra.sweeper.storage (trials report "
                                 "to it from their jobs); set a storage, or hydra/sweeper/pruner=none\n")
    assert list(tmp_path.iterdir()) == []


def test_metric_names_other_than_one_per_direction_stop_the_search_in_one_line(cli, tmp_path):
    code, _, err = cli("-m", "hparams_search=optuna", "hydra.sweeper.metric_names=[val/loss,val/r2]")
    assert code == 2 and err == "error: hydra.sweeper.metric_names=['val/loss', 'val/r2']: give one name per " \
                                "direction (minimize)\n"
    assert list(tmp_path.iterdir()) == []  # no study made, no sweep dir


def test_the_study_and_trial_reach_the_job_as_the_sweeper_named_them():
    from types import SimpleNamespace

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from hydra_plugins.primer_optuna_sweeper._impl import OptunaSearch
    from primer.sweeps.studies import STUDY_ENV, TRIAL_ENV

    name = "primer:data.seed=${seed},model.name='a b\\',x=c:\\d space:1234abcd\\"  # quotes, interpolation, backslash
    trial = SimpleNamespace(params={"optimizer.lr": 0.001}, number=3, study=SimpleNamespace(study_name=name))
    overrides = OverridesParser.create().parse_overrides(OptunaSearch._overrides(trial, {"seed": "1"}))
    assert [o.input_line for o in overrides[:2]] == ["optimizer.lr=0.001", "seed=1"]
    env = OmegaConf.create({o.key_or_group.rsplit(".", 1)[1]: o.value() for o in overrides[2:]})
    assert env[TRIAL_ENV] == 3 and env[STUDY_ENV] == name  # as the job's config resolves them


def test_a_trial_that_raised_or_returned_no_finite_value_is_told_failed_and_said_why(caplog):
    from types import SimpleNamespace

    from hydra_plugins.primer_optuna_sweeper._impl import OptunaSearch, _best

    class Ret:  # what the launcher returns: its return_value raises what the job raised
        def __init__(self, value):
            self.value = value

        @property
        def return_value(self):
            if isinstance(self.value, Exception):
                raise self.value
            return self.value

    search = OptunaSearch(SimpleNamespace(), None, "minimize", None, None, 4, 1, 0.0)
    study = optuna.create_study()
    assert _best(study, None) == "no trial completed"
    told = [search._tell(study, trial := study.ask(), Ret(value), trial.user_attrs)
            for value in (RuntimeError("the job broke"), float("nan"), "not a number", 2.5)]
    assert told == [True, True, True, False]
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 3 + [TrialState.COMPLETE]
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "trial 0 failed: RuntimeError: the job broke", "trial 1 failed: it returned [nan] for directions ['minimize']",
        "trial 2 failed: ValueError: could not convert string to float: 'not a number'"]
    assert _best(study, ["val/loss"]) == "val/loss 2.5 at trial 3: "


@pytest.mark.slow
def test_a_server_gone_mid_study_ends_in_one_line_and_the_next_search_fails_the_trial_it_left(
        tmp_path, postgresql_server):
    """Was SQLAlchemy's text as "bad input" (rc 2), and trial 3 RUNNING forever."""
    url = postgresql_server.new_database("gone_mid_study")
    beat = ["hydra.sweeper.heartbeat_s=1", f"hydra.sweeper.storage={url}", "hydra.sweeper.n_jobs=1"]
    proc = search(tmp_path, "hydra.sweeper.n_trials=6", "hydra.sweep.dir=sweep", *beat)
    while not list((tmp_path / "sweep").glob("3_*/.hydra")):  # trial 3's job has started
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    postgresql_server.stop()
    stopped = time.monotonic()
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        postgresql_server.start()
    assert proc.returncode == 5, err[-3000:]
    last = err.splitlines()[-1]
    assert last.startswith(f"error: the study's storage failed: {url}: "), err[-3000:]
    assert "Traceback" not in err
    study = only_study(url)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3 + [TrialState.RUNNING]
    # a trial is orphaned once its heartbeat is older than twice its interval: no event marks that moment
    time.sleep(max(0.0, stopped + 3 - time.monotonic()))
    again = finish(search(tmp_path, "hydra.sweeper.n_trials=1", "hydra.sweep.dir=again", *beat))
    assert f"trials 3 of study '{study.study_name}' were left running by a search that stopped; marked failed" in again
    states = [t.state for t in only_study(url).trials]
    assert states[3] == TrialState.FAIL and len(states) == 5 and states[4].is_finished()


@pytest.mark.slow  # a search whose trials fail as they are built: no step is trained
def test_a_search_stopped_by_its_failure_rate_ends_as_a_failed_sweep_with_its_summary(cli, tmp_path):
    code, out, err = cli("-m", "hparams_search=optuna", "hydra.sweeper.storage=null", "hydra.sweeper.n_trials=2",
                         "hydra.sweeper.max_failure_rate=0.0", "+optimizer.nesterov=true", *TINY, *QUIET)
    assert code == 4, err[-2000:]  # jobs failed: not bad input (2)
    assert err.splitlines()[-1].startswith("error: 1 of 1 trials failed (hydra.sweeper.max_failure_rate=0.0); "
                                           "see "), err
    assert "Sweep summary" in out and list(tmp_path.glob("outputs/multirun/*/summary.md"))
