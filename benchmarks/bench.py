"""python -m benchmarks.bench: primer's training path against the primer's plain loop, side by side.

    python -m benchmarks.bench                                  # every figure, as Markdown (a few minutes on 2 quiet cores)
    python -m benchmarks.bench --output benchmarks/RESULTS.md   # ... also written to a file
    python -m benchmarks.bench --parts steady --repeats 9       # one part, more repeats
    python -m benchmarks.bench --smoke                          # seconds: numerics only (what CI runs)

A is the primer's loop (benchmarks.plainloop); B is what `python -m primer.train` runs: the real
conf/ composed by Hydra and handed to primer.train.train, with everything the default run does
(TensorBoard logging, metrics, progress bar, final checkpoint). The steady-state table adds a bare
Lightning Trainer (no logger, callbacks, progress bar or summary; a LightningModule of a training
step and an optimizer) on the same net, data and optimizer: the floor primer's features add to.
Each measurement alternates A B (bare) A B ... after one untimed round, and reports medians. Steady-state time per step is measured
inside the run from the start of step `warmup` (a tenth of the steps) to the end of the last step,
in both A and B, so set-up (imports, Trainer, data, model summary, graph logging) and the end of
the run (validation, checkpoint, metrics.json) are left out; the whole-process part counts them.

Exits 1 if primer's final training loss differs from the plain loop's (rel 1e-5) anywhere.
"""

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl
import torch

from benchmarks.plainloop import plain_loop, sync

RTOL = 1e-5  # how close primer's final loss must be to the plain loop's
DEFAULT_SIZES = "64x100,256x256,1024x1024,4096x4096"  # batch x hidden; input 1000, output 10 as in the primer
SCALE_FLOPS = 2e10  # training FLOPs per scale run: steps = SCALE_FLOPS / FLOPs per step, within [4, 500]
PARTS = ("steady", "whole", "config", "scale")
# wall: what a user waits. cpu: this process's CPU seconds, which other load on the machine barely
# changes (with --threads 1; with more threads, idle threads' spinning counts too).
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


class StepTimer(pl.Callback):
    """Writes the seconds per training step, from the start of step `warmup` to the end of the last, and
    the last step's loss, to `path`."""

    def __init__(self, path: str, warmup: int, clock: str = "wall"):
        self.path, self.warmup, self.clock, self.start = Path(path), warmup, CLOCKS[clock], 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_step == self.warmup:
            sync(pl_module.device)
            self.start = self.clock()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.global_step == trainer.max_steps:
            sync(pl_module.device)
            seconds = (self.clock() - self.start) / (trainer.max_steps - self.warmup)
            loss = float(outputs["loss"] if isinstance(outputs, dict) else outputs)
            self.path.write_text(json.dumps({"seconds_per_step": seconds, "loss": loss}))


class BareRegression(pl.LightningModule):
    """What a Lightning user writes by hand for the primer: its step and its optimizer, nothing logged."""

    def __init__(self, net: torch.nn.Module, lr: float):
        super().__init__()
        self.net, self.lr = net, lr

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y, reduction="sum")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.net.parameters(), lr=self.lr)


def bare_fit(size: dict, device: str, warmup: int, out_dir: Path, clock: str = "wall") -> tuple[float, float]:
    """A bare Lightning Trainer on the primer's net, data and optimizer; returns (final loss, seconds per step)."""
    from primer.run.data import SyntheticRegression
    from primer.tutorial.nets import TwoLayerNet

    steps, seed = size["trainer.max_steps"], size["seed"]
    data = SyntheticRegression(size["data.batch_size"], size["data.input_dim"], size["data.output_dim"], steps, seed=seed)
    torch.manual_seed(seed)  # as primer's seed_everything leaves it before the net is made
    net = TwoLayerNet(size["data.input_dim"], size["model.hidden_dim"], size["data.output_dim"])
    timer_path = out_dir / "step_timer.json"
    trainer = pl.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu", devices=1, max_steps=steps, logger=False,
        callbacks=[StepTimer(str(timer_path), warmup, clock)], enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False,
    )
    trainer.fit(BareRegression(net, size["optimizer.lr"]), datamodule=data)
    timed = json.loads(timer_path.read_text())
    return timed["loss"], timed["seconds_per_step"]


def primer_fit(size: dict, device: str, warmup: int, out_dir: Path, clock: str = "wall") -> tuple[float, float]:
    """One `python -m primer.train` run in this process; returns (final train/loss, seconds per step)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from primer.config import CONFIG_DIR, CONFIG_NAME
    from primer.cli.train import train

    timer_path = out_dir / "step_timer.json"
    overrides = [
        f"hydra.run.dir={out_dir}",
        f"trainer={'gpu' if device == 'cuda' else 'cpu'}",
        *(f"{key}={value}" for key, value in size.items()),
        "+callbacks.step_timer._target_=benchmarks.bench.StepTimer",
        f"+callbacks.step_timer.path={timer_path}",
        f"+callbacks.step_timer.warmup={warmup}",
        f"+callbacks.step_timer.clock={clock}",
    ]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(CONFIG_NAME, overrides=overrides, return_hydra_config=True)
    HydraConfig().set_config(cfg)  # what @hydra.main does before calling the task
    with open_dict(cfg):
        cfg.paths.output_dir = str(out_dir)
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):  # the bar draws, unseen
        metrics, _ = train(cfg)
    return metrics["train/loss"], json.loads(timer_path.read_text())["seconds_per_step"]


def plain_fit(size: dict, device: str, warmup: int, clock: str = "wall") -> tuple[float, float]:
    return plain_loop(
        batch_size=size["data.batch_size"],
        input_dim=size["data.input_dim"],
        hidden_dim=size["model.hidden_dim"],
        output_dim=size["data.output_dim"],
        steps=size["trainer.max_steps"],
        lr=size["optimizer.lr"],
        seed=size["seed"],
        device=device,
        warmup=warmup,
        clock=CLOCKS[clock],
    )


def side_by_side(size: dict, device: str, repeats: int, workdir: Path, clock: str = "wall", bare: bool = False) -> dict:
    """A B A B ... (A B C with the bare Trainer) after one untimed round; medians of seconds per step,
    every final loss, and the median of each round's primer / bare ratio."""
    warmup = max(1, size["trainer.max_steps"] // 10)
    fits = {"plain": lambda: plain_fit(size, device, warmup, clock),
            "primer": lambda: primer_fit(size, device, warmup, Path(tempfile.mkdtemp(dir=workdir)), clock)}
    if bare:
        fits["bare"] = lambda: bare_fit(size, device, warmup, Path(tempfile.mkdtemp(dir=workdir)), clock)
    runs = {kind: [] for kind in fits}
    for repeat in range(repeats + 1):
        measured = {kind: fit() for kind, fit in fits.items()}
        if repeat > 0:
            for kind, run in measured.items():
                runs[kind].append(run)
    losses = [loss for kind in runs.values() for loss, _ in kind]
    result = {f"{kind}_s": statistics.median(s for _, s in runs[kind]) for kind in runs}
    result |= {f"{kind}_loss": runs[kind][0][0] for kind in runs}
    result["ratio"] = result["primer_s"] / result["plain_s"]
    if bare:  # ratios of the same round, where the machine's load was about the same for both
        result["over_bare"] = statistics.median(p / b for (_, p), (_, b) in zip(runs["primer"], runs["bare"]))
    result["same_loss"] = all(abs(loss - losses[0]) <= RTOL * abs(losses[0]) for loss in losses)
    return result


def make_size(batch: int, hidden: int, steps: int, input_dim: int = 1000, output_dim: int = 10) -> dict:
    """The primer.train overrides of one size. lr shrinks as the summed loss grows, so big sizes stay finite."""
    return {
        "data.batch_size": batch,
        "data.input_dim": input_dim,
        "data.output_dim": output_dim,
        "model.hidden_dim": hidden,
        "trainer.max_steps": steps,
        "optimizer.lr": 1e-4 * min(1.0, 64 * 100 / (batch * hidden)),
        "seed": 0,
    }


def train_flops(size: dict) -> float:
    """FLOPs of one step: forward 2N(D_in H + H D_out), backward 2N D_in H (dW1) + 4N H D_out (dW2, dh)."""
    n, d_in, h, d_out = (size[k] for k in ("data.batch_size", "data.input_dim", "model.hidden_dim", "data.output_dim"))
    return 4 * n * d_in * h + 6 * n * h * d_out


def mm_gflops(size: dict, device: str) -> float:
    """A bare torch.mm of the first layer's shape, (N, D_in) @ (D_in, H), repeated for ~0.3 s."""
    n, d_in, h = size["data.batch_size"], size["data.input_dim"], size["model.hidden_dim"]
    a, b = torch.randn(n, d_in, device=device), torch.randn(d_in, h, device=device)
    torch.mm(a, b)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < 0.3:
        for _ in range(10):
            torch.mm(a, b)
        sync(device)
        count += 10
    return 2 * n * d_in * h * count / (time.perf_counter() - start) / 1e9


def wall_seconds(argv: list[str], expect_rc: int = 0) -> float:
    start = time.perf_counter()
    rc = subprocess.run([sys.executable, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    seconds = time.perf_counter() - start
    if rc != expect_rc:
        raise RuntimeError(f"{' '.join(argv)} exited {rc}, expected {expect_rc}")
    return seconds


def whole_process(repeats: int, workdir: Path) -> dict:
    """`python -m benchmarks.plainloop` and `python -m primer.train`, each a fresh process, A B A B."""
    times = {"plain": [], "primer": []}
    for repeat in range(repeats + 1):
        plain = wall_seconds(["-m", "benchmarks.plainloop"])
        primer = wall_seconds(["-m", "primer.train", f"hydra.run.dir={workdir}/whole{repeat}"])
        if repeat > 0:
            times["plain"].append(plain)
            times["primer"].append(primer)
    plain_s, primer_s = statistics.median(times["plain"]), statistics.median(times["primer"])
    return {"plain_s": plain_s, "primer_s": primer_s, "ratio": primer_s / plain_s}


CONFIG_COMMANDS = {
    "python -m primer.train --help": (["--help"], 0),
    "python -m primer.train --cfg job": (["--cfg", "job"], 0),
    "python -m primer.train data.batch_size=0  (rejected)": (["data.batch_size=0"], 2),
    "python -m primer.train trainer.max_step=5  (rejected by Hydra: no such key)": (["trainer.max_step=5"], 2),
    # checked against lightning.Trainer's signature: costs the torch and Lightning imports, as a run does
    "python -m primer.train trainer.precision=17  (rejected by the Trainer's signature)": (["trainer.precision=17"], 2),
}


def config_only(repeats: int) -> dict[str, float]:
    times = {name: [] for name in CONFIG_COMMANDS}
    for _ in range(repeats):
        for name, (argv, rc) in CONFIG_COMMANDS.items():
            times[name].append(wall_seconds(["-m", "primer.train", *argv], expect_rc=rc))
    return {name: statistics.median(t) for name, t in times.items()}


def machine() -> str:
    models = [line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")]
    cpu = models[0] if models else platform.processor()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    # torchmetrics imports these at every start if they are installed (the `sweeps` extra brings both)
    optional = ", ".join(f"{name} {'installed' if importlib.util.find_spec(name) else 'not installed'}"
                         for name in ("scipy", "matplotlib"))
    return (
        f"CPU {cpu}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}; GPU {gpu}; "
        f"Python {platform.python_version()}, torch {torch.__version__}, lightning {pl.__version__}; {optional}"
    )


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}"


def yes_no(same: bool) -> str:
    return "yes" if same else "NO"


def run(args: argparse.Namespace, workdir: Path) -> tuple[list[str], bool]:
    """Measures the chosen parts, printing each table when it is done; returns all lines and whether numerics agree."""
    tables = {"steady": steady_table, "whole": whole_table, "config": config_table, "scale": scale_table}
    lines, same = [], True
    for part in args.parts:
        part_lines, part_same = tables[part](args, workdir)
        print("\n".join(part_lines), flush=True)
        lines += part_lines
        same &= part_same
    return lines, same


def steady_table(args: argparse.Namespace, workdir: Path) -> tuple[list[str], bool]:
    size, same = args.steady_size, True
    shape = " -> ".join(str(size[k]) for k in ("data.input_dim", "model.hidden_dim", "data.output_dim"))
    shape = f"{size['data.batch_size']} x {shape}" + "".join(f", primer with {item}" for item in args.set)
    lines = [f"## Steady state, per step, {args.clock} clock (targets: primer <= 1.25x plain; "
             "primer <= 1.10x a bare Trainer)", ""]
    lines += ["| device | N x D_in -> H -> D_out | steps | plain ms/step | bare Trainer ms/step | primer ms/step "
              "| primer / plain | primer / bare Trainer | final loss plain / bare / primer | same (rel 1e-5) |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for device in args.devices:
        if device == "cuda" and not torch.cuda.is_available():
            lines.append(f"| cuda | {shape} | | not measured: no CUDA device | | | | | | |")
            continue
        r = side_by_side(size, device, args.repeats, workdir, args.clock, bare=True)
        same &= r["same_loss"]
        lines.append(
            f"| {device} | {shape} | {size['trainer.max_steps']} | {ms(r['plain_s'])} | {ms(r['bare_s'])} | "
            f"{ms(r['primer_s'])} | {r['ratio']:.2f}x | {r['over_bare']:.2f}x | "
            f"{r['plain_loss']:.6g} / {r['bare_loss']:.6g} / {r['primer_loss']:.6g} | {yes_no(r['same_loss'])} |"
        )
    return lines + [""], same


def whole_table(args: argparse.Namespace, workdir: Path) -> tuple[list[str], bool]:
    r = whole_process(args.repeats, workdir)
    lines = ["## Whole process, 500 steps (target: primer <= 1.5x plain)", ""]
    lines += ["| `python -m benchmarks.plainloop` s | `python -m primer.train` s | ratio |", "|---|---|---|"]
    return lines + [f"| {r['plain_s']:.2f} | {r['primer_s']:.2f} | {r['ratio']:.2f}x |", ""], True


def config_table(args: argparse.Namespace, workdir: Path) -> tuple[list[str], bool]:
    lines = ["## Config-only commands (target: < 1 s each)", "", "| command | wall s |", "|---|---|"]
    return lines + [f"| `{name}` | {s:.2f} |" for name, s in config_only(args.repeats).items()] + [""], True


def scale_table(args: argparse.Namespace, workdir: Path) -> tuple[list[str], bool]:
    same = True
    lines = [f"## Scale: overhead ratio as the matmuls grow, {args.clock} clock", ""]
    lines += ["| device | N x H | steps | plain ms/step | primer ms/step | ratio | plain GFLOP/s | primer GFLOP/s "
              "| bare torch.mm GFLOP/s | same loss |", "|---|---|---|---|---|---|---|---|---|---|"]
    for device in args.devices:
        if device == "cuda" and not torch.cuda.is_available():
            lines.append("| cuda | | | not measured: no CUDA device | | | | | | |")
            continue
        for batch, hidden in args.sizes:
            size = make_size(batch, hidden, steps=1)
            size["trainer.max_steps"] = int(min(500, max(4, SCALE_FLOPS / train_flops(size))))
            r = side_by_side(size, device, args.scale_repeats, workdir, args.clock)
            same &= r["same_loss"]
            gflop = train_flops(size) / 1e9
            lines.append(
                f"| {device} | {batch} x {hidden} | {size['trainer.max_steps']} | {ms(r['plain_s'])} | "
                f"{ms(r['primer_s'])} | {r['ratio']:.2f}x | {gflop / r['plain_s']:.1f} | {gflop / r['primer_s']:.1f} | "
                f"{mm_gflops(size, device):.1f} | {yes_no(r['same_loss'])} |"
            )
    return lines + [""], same


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--devices", default="cpu,cuda", help="cpu and/or cuda; without a GPU, cuda is 'not measured'")
    parser.add_argument("--steps", type=int, default=500, help="steps of the steady-state runs")
    parser.add_argument("--batch", type=int, default=64, help="steady state: batch size N")
    parser.add_argument("--hidden", type=int, default=100, help="steady state: hidden size H")
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="scale: comma-separated NxH (batch x hidden)")
    parser.add_argument("--repeats", type=int, default=5, help="timed A B pairs for steady, whole and config")
    parser.add_argument("--scale-repeats", type=int, default=3, help="timed A B pairs per scale size")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="steady state: an override for primer's run only, e.g. trainer.log_every_n_steps=50")
    parser.add_argument("--clock", choices=CLOCKS, default="wall", help="per-step time: wall or this process's CPU")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--output", type=Path, help="also write the Markdown report to this file")
    parser.add_argument("--note", default="", help="a line for the report, e.g. what else ran on the machine")
    parser.add_argument("--smoke", action="store_true", help="a tiny steady-state run on the CPU: checks numerics only")
    args = parser.parse_args(argv)
    args.parts = [p for p in args.parts.split(",") if p]
    args.devices = [d for d in args.devices.split(",") if d]
    if unknown := set(args.parts) - set(PARTS) or set(args.devices) - {"cpu", "cuda"}:
        parser.error(f"unknown part or device: {', '.join(sorted(unknown))}")
    args.sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",") if s]
    args.steady_size = make_size(args.batch, args.hidden, args.steps)
    if args.smoke:
        args.parts, args.devices, args.repeats = ["steady"], ["cpu"], 1
        args.steady_size = make_size(batch=8, hidden=4, steps=20, input_dim=8, output_dim=2)
    args.steady_size |= dict(item.split("=", 1) for item in args.set)  # primer_fit passes every key on
    return args


def main(argv: list[str] | None = None) -> int:
    import logging
    import warnings

    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the whole-process and config runs' torch too
    for name in ("lightning.pytorch", "lightning.fabric"):  # no "GPU available: ...", "Seed set" per run
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="lightning")
    command = shlex.join(["python", "-m", "benchmarks.bench", *(argv if argv is not None else sys.argv[1:])])
    header = [f"Command: `{command}`", "", f"Machine: {machine()}", ""]
    header += [f"Measured: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. {args.note}".rstrip(), ""]
    print("\n".join(header), flush=True)
    with tempfile.TemporaryDirectory(prefix="primer-bench-") as workdir:
        lines, same = run(args, Path(workdir))
    if args.output:
        args.output.write_text("# primer benchmark results\n\n" + "\n".join(header + lines))
    if not same:
        print("error: primer's final loss differs from the plain loop's (rel 1e-5)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
