"""primer: the networks of "A PyTorch Primer", trained with Lightning and configured by Hydra."""
