"""Whole processes benchmarks.bench times from the outside: a run (`python -m benchmarks.plainloop`
against `python -m primer.train`) and the commands that only read the config."""

import statistics
import subprocess
import sys
import time
from pathlib import Path


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

