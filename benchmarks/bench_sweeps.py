"""Sweeps against the training they run, side by side in one run of this script.

    python benchmarks/bench_sweeps.py                  # both tables, 3 timed pairs each
    python benchmarks/bench_sweeps.py --repeats 5 --note 'what else ran on the machine'

1. The 8-job grid `python -m primer.train -m optimizer.lr=1e-4,2e-4,5e-5,1e-5 model=two_layer,sequential`
   (basic launcher, default 500 steps) against the same 8 trainings as plain loops in one Python
   process (this script with --plain-grid): whole-process wall time, A B A B, medians.
2. A 2-job `hydra/launcher=local seed=0,1` sweep, per job, against the same job alone
   (`python -m primer.train seed=0`): the training's own wall time from each run.json, and the cores
   each was given.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LRS, MODELS = (1e-4, 2e-4, 5e-5, 1e-5), ("two_layer", "sequential")
GRID = [f"optimizer.lr={','.join(map(str, LRS))}", f"model={','.join(MODELS)}"]


def plain_grid() -> None:
    """The grid's 8 trainings as the tutorial's loop: same data, nets, seed, loss and SGD as each job."""
    import torch
    from torch import nn

    from primer.tutorial.nets import TwoLayerNet, sequential_net

    nets = {"two_layer": TwoLayerNet, "sequential": sequential_net}
    for lr in LRS:
        for model in MODELS:
            gen = torch.Generator().manual_seed(0)
            x, y = torch.randn(64, 1000, generator=gen), torch.randn(64, 10, generator=gen)  # (N, D_in), (N, D_out)
            torch.manual_seed(0)
            net = nets[model](1000, 100, 10)
            loss_fn, optimizer = nn.MSELoss(reduction="sum"), torch.optim.SGD(net.parameters(), lr=lr)
            for _ in range(500):
                loss = loss_fn(net(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            print(f"{model} lr={lr}: loss {loss.item():.6g}")


def wall(argv: list[str], expect_rc: int = 0) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          check=False)
    seconds = time.perf_counter() - start
    if done.returncode != expect_rc:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-2000:]}")
    return seconds


def run_json(job_dir: Path) -> dict:
    return json.loads((job_dir / "run.json").read_text())


def grid_vs_plain(repeats: int, workdir: Path) -> dict:
    times = {"grid": [], "plain": [], "fit": []}
    for repeat in range(repeats + 1):  # the first pair warms the file cache; not counted
        sweep_dir = workdir / f"grid{repeat}"
        grid = wall(["-m", "primer.train", "-m", *GRID, f"hydra.sweep.dir={sweep_dir}"])
        plain = wall([__file__, "--plain-grid"])
        if repeat:
            jobs = [d for d in sweep_dir.iterdir() if (d / "run.json").is_file()]
            assert len(jobs) == 8, jobs
            times["grid"].append(grid)
            times["plain"].append(plain)
            times["fit"].append(sum(run_json(d)["wall_time_s"] for d in jobs))
    grid, plain, fit = (statistics.median(times[k]) for k in ("grid", "plain", "fit"))
    return {"grid_s": grid, "plain_s": plain, "ratio": grid / plain, "fit_s": fit, "runs": times}


def local_vs_alone(repeats: int, workdir: Path) -> dict:
    times = {"alone": [], "local": [], "local_command": []}
    cores = {}
    for repeat in range(repeats + 1):
        alone_dir = workdir / f"alone{repeat}"
        wall(["-m", "primer.train", "seed=0", f"hydra.run.dir={alone_dir}"])
        sweep_dir = workdir / f"local{repeat}"
        command = wall(["-m", "primer.train", "-m", "hydra/launcher=local", "seed=0,1", f"hydra.sweep.dir={sweep_dir}"])
        jobs = [d for d in sweep_dir.iterdir() if (d / "run.json").is_file()]
        assert len(jobs) == 2, jobs
        cores = {"alone": _cores(run_json(alone_dir)), "local": _cores(run_json(jobs[0]))}
        if repeat:
            times["alone"].append(run_json(alone_dir)["wall_time_s"])
            times["local"].append(statistics.mean(run_json(d)["wall_time_s"] for d in jobs))
            times["local_command"].append(command)
    alone, local, command = (statistics.median(times[k]) for k in ("alone", "local", "local_command"))
    return {"alone_s": alone, "local_s": local, "ratio": local / alone, "command_s": command, "cores": cores,
            "runs": times}


def _cores(run: dict) -> str:
    return f"{run['intra_op_threads']} threads ({run['cores_from']})"


def report(grid: dict, local: dict, repeats: int, note: str) -> str:
    import platform

    import torch

    lines = [f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {repeats} timed pairs each (medians), "
             f"{len(__import__('os').sched_getaffinity(0))} cores, torch {torch.__version__}, Python "
             f"{platform.python_version()}. {note}".strip(), "",
             "| figure | goal | primer | baseline | ratio |", "|---|---|---|---|---|",
             (f"| 8-job grid `-m {' '.join(GRID)}`, whole command / the 8 plain loops in one process | <= 1.8x "
              f"| {grid['grid_s']:.2f} s (training itself: {grid['fit_s']:.2f} s, summed run.json) "
              f"| {grid['plain_s']:.2f} s | {grid['ratio']:.2f}x |"),
             (f"| `-m hydra/launcher=local seed=0,1`, per job (run.json) / the same job alone | <= 1.5x "
              f"| {local['local_s']:.2f} s, {local['cores']['local']}; whole command {local['command_s']:.1f} s "
              f"| {local['alone_s']:.2f} s, {local['cores']['alone']} | {local['ratio']:.2f}x |")]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed pairs per figure, after one untimed pair")
    parser.add_argument("--note", default="", help="a line for the report, e.g. what else ran on the machine")
    parser.add_argument("--plain-grid", action="store_true", help="run the grid as plain loops (the baseline)")
    args = parser.parse_args()
    if args.plain_grid:
        plain_grid()
        return
    with tempfile.TemporaryDirectory() as workdir:
        grid = grid_vs_plain(args.repeats, Path(workdir))
        local = local_vs_alone(args.repeats, Path(workdir))
    print(report(grid, local, args.repeats, args.note))
    print(f"\nevery timing: grid {grid['runs']}\nlocal {local['runs']}")


if __name__ == "__main__":
    main()
