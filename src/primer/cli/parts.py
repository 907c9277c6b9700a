"""The parts of a run built from its config and Hydra's runtime: what primer.cli.train assembles."""

from primer.config import key_and_value
from primer.run.dashboard import HParamValue


def run_hparams(cfg) -> dict[str, HParamValue]:
    """The run's choices and values, flat (`optimizer.lr`), as HPARAMS takes them.

    Every key the command line set is included, so a swept key always has its column.
    """
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    hydra = HydraConfig.get()
    hparams = {g: c for g, c in hydra.runtime.choices.items() if not g.startswith("hydra")}
    hparams |= {"seed": cfg.seed, "trainer.max_steps": cfg.trainer.max_steps}
    for group in ("model", "optimizer", "data"):
        for key, value in OmegaConf.to_container(cfg[group], resolve=True).items():
            if not key.startswith("_"):
                hparams[f"{group}.{key}"] = value
    typed = [key_and_value(o)[0] for o in hydra.overrides.task if not o.startswith("~")]
    typed = [k for k in typed if not k.startswith("hydra")]
    for key in typed:
        if key not in hparams:
            hparams[key] = OmegaConf.select(cfg, key)
    hparams = {k: v if v is None or isinstance(v, (str, bool, int, float)) else str(v) for k, v in hparams.items()}
    return hparams
