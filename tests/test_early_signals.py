"""Ctrl-C or SIGTERM while a command is still importing torch, Lightning and Hydra ends in one line,
with the command's exit code (130, 143), no traceback and no run dir: the entry modules hand the
signals to primer.exits before those imports start."""

import signal
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import cli_env, wait_for_file

# Holds the command inside the first import of a heavy package until a signal arrives, after leaving a
# marker: the signal then lands in the middle of the heavy imports, wherever they sit in the entry module.
HOLD_IMPORT = textwrap.dedent("""
    import os, sys, time

    class HoldImport:
        def find_spec(self, name, path=None, target=None):
            if name == os.environ["PRIMER_TEST_HOLD"]:
                sys.meta_path.remove(self)
                open(os.environ["PRIMER_TEST_MARKER"], "w").close()
                for _ in range(600):
                    time.sleep(0.05)
            return None

    sys.meta_path.insert(0, HoldImport())
""")


@pytest.mark.slow
# train imports Hydra first; eval reads the checkpoint with torch first
@pytest.mark.parametrize("module, args, held", [("primer.train", ["trainer.max_steps=6"], "hydra"),
                                                ("primer.eval", ["ckpt_path=final.ckpt"], "torch")])
@pytest.mark.parametrize("signum, code, said", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")])
def test_a_signal_during_the_imports_ends_in_one_line(tmp_path, module, args, held, signum, code, said):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOLD_IMPORT)
    (tmp_path / "final.ckpt").write_bytes(b"")  # eval reads only a file that exists
    marker = tmp_path / "importing"
    env = cli_env()
    env["PYTHONPATH"] = f"{hook}:{env['PYTHONPATH']}"
    env["PRIMER_TEST_MARKER"], env["PRIMER_TEST_HOLD"] = str(marker), held
    process = subprocess.Popen([sys.executable, "-m", module, *args], cwd=tmp_path, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_file(marker, process)
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    assert err.strip().splitlines() == [f"interrupted: {said} before training started; nothing to resume"], err
    assert "Traceback" not in out + err
    assert not (tmp_path / "outputs").exists()
