"""benchmarks.bench in its smoke mode and a short benchmarks.log_cost: numerics and what was logged,
no timing assertions (benchmarks are not timed tests)."""

import pytest

from benchmarks import bench, steady


def test_smoke_bench_finds_primer_and_plain_loop_reach_the_same_loss(capsys):
    assert bench.main(["--smoke"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| cpu |"))
    assert row.endswith("| yes |")


def test_bench_exits_non_zero_when_primer_numerics_differ(monkeypatch, capsys):
    plain_loop = steady.plain_loop
    monkeypatch.setattr(steady, "plain_loop", lambda **kw: (plain_loop(**kw)[0] * (1 + 1e-3), 1e-3))
    assert bench.main(["--smoke"]) == 1
    assert "differs from the plain loop" in capsys.readouterr().err



@pytest.mark.slow  # a 20-step fit
def test_log_cost_times_calls_that_reach_callback_metrics():
    from benchmarks.log_cost import log_cost

    seconds, logged = log_cost(steps=20, names=3)
    assert seconds > 0
    assert {"train/value_0", "train/value_1", "train/value_2"} <= set(logged)
