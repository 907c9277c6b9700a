"""`python -m primer.train --help`: the config groups and the keys users type, read from conf/ itself (Hydra's
own --help composes the config once per group of every plugin, over a second; it is `--hydra-help`)."""

from pathlib import Path

from omegaconf import OmegaConf

from primer.checks.validation import RULES
from primer.config import CONFIG_DIR, CONFIG_NAME

USAGE = """\
python -m primer.train [group=choice ...] [key=value ...]     train once
python -m primer.train -m [group=a,b ...] [key=x,y ...]         sweep: one job per combination
python -m primer.train --cfg job [overrides]                    print the composed config, train nothing
python -m primer.train --hydra-help                             Hydra's own flags and groups (launchers, sweepers)
"""


def help_text() -> str:
    conf = Path(CONFIG_DIR)
    defaults = {}
    for entry in OmegaConf.load(conf / f"{CONFIG_NAME}.yaml").defaults:
        if OmegaConf.is_dict(entry):
            defaults.update({str(k): v for k, v in entry.items()})
    groups = sorted(d.name for d in conf.iterdir() if d.is_dir() and d.name != "hydra")
    lines = [USAGE, "Config groups (default in brackets):"]
    for group in groups:
        options = ", ".join(sorted(p.stem for p in (conf / group).glob("*.yaml")))
        lines.append(f"  {group}: {options}  [{defaults.get(group) or '-'}]")
    launchers = ", ".join(sorted(["basic", "joblib", *(p.stem for p in (conf / "hydra" / "launcher").glob("*.yaml"))]))
    lines.append(f"  hydra/launcher (with -m): {launchers}  [basic]")
    lines += ["", "Keys you will type most (any value in --cfg job can be overridden):"]
    lines += [f"  {key}: {allowed}" for key, (allowed, _) in RULES.items()]
    lines += ["", "Outputs: ./outputs/runs/<what changed>_<month><day>-<time>_<pid>/ (sweeps: ./outputs/multirun/...);",
              "README.md has more."]
    return "\n".join(lines)
