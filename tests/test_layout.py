"""The tree shows the layers: every import inside src/primer points down, never up or sideways."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "primer"
# lower number = lower layer; a module may import only from layers below its own (and its own package)
LAYERS = {"exits": 0, "config": 0, "writes": 0, "tutorial": 1, "run": 2, "checks": 3, "sweeps": 3, "cli": 4,
          "api": 5, "train": 6, "eval": 6, "report": 6, "__init__": 7}
MODULES = sorted(p for p in SRC.rglob("*.py"))


def part_of(module: str) -> str:
    """`primer.run.system` -> `run`; `primer.exits` -> `exits`; `primer` -> `__init__`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path) -> set[str]:
    """Every primer module that `path` imports, at module level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("primer")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "primer":
            found |= {f"{node.module}.{a.name}" if node.module == "primer" else node.module for a in node.names}
    return found


def name_of(path: Path) -> str:
    return ".".join(("primer", *path.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")


def test_every_module_belongs_to_a_layer():
    assert {part_of(name_of(p)) for p in MODULES} <= set(LAYERS)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path):
    me = part_of(name_of(path))
    upward = [m for m in imports_of(path) if part_of(m) != me and LAYERS[part_of(m)] >= LAYERS[me]]
    assert not upward, f"{name_of(path)} ({me}) imports {upward} from its own layer or above"


def third_party_imports(path: Path) -> set[str]:
    """The top-level packages `path` imports (`lightning` for `from lightning.pytorch import ...`)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(("part", "unknown"), [("tutorial", {"lightning", "hydra", "omegaconf"}), ("run", {"hydra"})])
def test_the_tutorial_knows_no_lightning_and_the_system_no_hydra(part, unknown):
    for path in (SRC / part).glob("*.py"):
        found = third_party_imports(path) & unknown
        assert not found, f"{part}/{path.name} imports {found}"


def calls_signal_signal(path: Path) -> bool:
    """Whether `path` sets a signal handler: `signal.signal(...)`, or `signal(...)` imported from signal."""
    tree = ast.parse(path.read_text())
    imported = any(isinstance(n, ast.ImportFrom) and n.module == "signal" and "signal" in {a.name for a in n.names}
                   for n in ast.walk(tree))
    return any(isinstance(n, ast.Call) and (
        (isinstance(n.func, ast.Attribute) and n.func.attr == "signal" and getattr(n.func.value, "id", "") == "signal")
        or (imported and isinstance(n.func, ast.Name) and n.func.id == "signal")) for n in ast.walk(tree))


def test_one_module_sets_the_signal_handlers():
    setters = [name_of(p) for p in MODULES if calls_signal_signal(p)]
    assert setters == ["primer.exits"], setters


def imported_modules(path: Path) -> set[str]:
    """The primer modules `path` imports, `from primer.run import run_dir` read as primer.run.run_dir."""
    names = {name_of(p) for p in MODULES}
    found = set()
    for name in imports_of(path):
        found.add(name if name in names else name.rpartition(".")[0] if name.rpartition(".")[0] in names else name)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("primer"):
            found |= {f"{node.module}.{a.name}" for a in node.names} & names
    return found & names


def test_no_import_circle():
    graph = {name_of(p): imported_modules(p) - {name_of(p)} for p in MODULES}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and not seen.add(n) and reaches(n, goal, seen)) for n in graph[start])

    circles = sorted(m for m in graph if reaches(m, m, set()))
    assert not circles, f"these modules import themselves through others: {circles}"
