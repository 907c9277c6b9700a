"""python -m benchmarks.bench: primer's training path against the primer's plain loop, side by side.

    python -m benchmarks.bench                                  # every figure, as Markdown (minutes on 2 quiet cores)
    python -m benchmarks.bench --output benchmarks/RESULTS.md   # ... also written to a file
    python -m benchmarks.bench --parts steady --repeats 9       # one part, more repeats
    python -m benchmarks.bench --smoke                          # seconds: numerics only (what CI runs)

A is the primer's loop (benchmarks.plainloop); B is what `python -m primer.train` runs: the real
conf/ composed by Hydra and handed to primer.cli.train.train, with everything the default run does
(TensorBoard logging, metrics, progress bar, final checkpoint). The steady-state table adds a bare
Lightning Trainer (no logger, callbacks, progress bar or summary; a LightningModule of a training
step and an optimizer) on the same net, data and optimizer: the floor primer's features add to.
Each measurement alternates A B (bare) A B ... after one untimed round, and reports medians. Steady-state time per
step is measured inside the run from the start of step `warmup` (a tenth of the steps) to the end of the last step,
in both A and B, so set-up (imports, Trainer, data, model summary, graph logging) and the end of
the run (validation, checkpoint, metrics.json) are left out; the whole-process part counts them.

Exits 1 if primer's final training loss differs from the plain loop's (rel 1e-5) anywhere.
"""

import argparse
import importlib.util
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl
import torch

from benchmarks.scale import DEFAULT_SIZES, SCALE_FLOPS, mm_gflops, train_flops
from benchmarks.steady import CLOCKS, make_size, side_by_side
from benchmarks.whole import config_only, whole_process

PARTS = ("steady", "whole", "config", "scale")


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
