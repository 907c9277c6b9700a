"""docs/the_primer.ipynb runs, as a reader runs it: every cell in one kernel, through primer's Python API,
at 100 steps a section instead of the tutorial's 500, with no error and no warning in what it shows."""

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "the_primer.ipynb"
SECTIONS = 5  # the tutorial's training sections: a loss curve each


@pytest.mark.slow  # trains every section
def test_the_notebook_trains_every_section_and_shows_no_error_or_warning(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    [size] = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert size.source.startswith("STEPS = 500")
    size.source = "STEPS = 100"
    # run where the test's files may go: the runs land in outputs/runs/ there
    resources = {"metadata": {"path": str(tmp_path)}}
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources=resources).execute()

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    shown = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "warn" not in shown.lower(), shown
    # as quiet as the command line: Lightning's set-up lines go to each run's train.log only
    assert not any(line in shown for line in ("Seed set to", "GPU available", "Total params")), shown
    curves = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(curves) == SECTIONS
    assert len(list((tmp_path / "outputs" / "runs").iterdir())) == SECTIONS  # no run for the refused command
    tables = [line.split() for line in shown.splitlines() if line.startswith("  99 / 100")]
    assert len(tables) == SECTIONS
    for _, _, _, seed, plain, primer in tables:  # the plain loop and primer agree at step 100
        assert float(primer) == pytest.approx(float(plain), rel=1e-3)
    assert "x.grad = tensor([[4.5000, 4.5000]," in shown
    assert "optimizer.lr=-1: must be a number, 0 or more" in shown  # the last cell: BadConfig's line
