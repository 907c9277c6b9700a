"""primer: the networks of "A PyTorch Primer", trained with Lightning and configured by Hydra.

    from primer import evaluate, fit      # primer.api: the command line's runs and checks, from Python
"""

from primer.api import evaluate, fit

__all__ = ["evaluate", "fit"]
