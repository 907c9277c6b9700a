"""Command lines that every primer.train start refuses in one line, exit 2, writing nothing: the rows that
tests/test_cli_contract.py (in this process) and tests/test_config.py (a real subprocess) both run.

A row is (command line, the whole line after "error: ", or its start when it ends with " ...").
"""

SHARED = [
    ("trainer.max_steps=0", "trainer.max_steps=0: must be a positive integer, or -1 for no limit ..."),
    ("trainer.max_steps=many", "trainer.max_steps=many: must be a positive integer, or -1 for no limit ..."),
    ("trainer.max_step=5", "trainer.max_step: no such key; did you mean trainer.max_steps?"),
    ("model.hiden_dim=5", "model.hiden_dim: no such key; did you mean model.hidden_dim?"),
    ("model=foo", "model=foo: no such model; choose one of autograd, custom_relu, manual, raw_custom_relu, sequential, "
     "two_layer"),
    ("optimizer=rmsprop", "optimizer=rmsprop: no such optimizer; choose one of adam, sgd"),
    ("optimizer.lr=-0.1", "optimizer.lr=-0.1: must be a number, 0 or more"),  # torch refuses it; lr=0 runs
    ("optimizer.lr=fast", "optimizer.lr=fast: must be a number, 0 or more"),
    ("optimizer.momentum=lots", "optimizer.momentum=lots: Input should be a valid number (torch.optim.SGD)"),
    ("data.batch_size=0", "data.batch_size=0: must be a positive integer"),
    ("data.output_dim=2.5", "data.output_dim=2.5: must be a positive integer"),
    ("seed=abc", "seed=abc: must be an integer from 0 to 4294967295 (numpy's seeds), or null to draw one"),
    ("-m optimizer.lr=1e-4,-1", "optimizer.lr=-1: must be a number, 0 or more"),
    ("-m model=two_layer,bogus", "model=bogus: no such model; choose one of ..."),
    ("-m trainer.max_step=5,6", "trainer.max_step: no such key; did you mean trainer.max_steps?"),
    ("-m --cfg job", "only one of --run, --multirun, --cfg, --info and --shell_completion can be specified"),
    # what a value may be, where pydantic would list each member's error
    ("trainer.precision=17", "trainer.precision=17: must be one of 64, 32, 16, transformer-engine, "
     "transformer-engine-float16, 16-true, 16-mixed, bf16-true, bf16-mixed, 32-true, 64-true, bf16, null "
     "(lightning.Trainer)"),
    ("optimizer=adam +optimizer.betas=[0.9]", "optimizer.betas=[0.9]: must be 2 values, got 1 (torch.optim.Adam)"),
    # the option a key or a number points to
    ("scheduler=none scheduler.gamma=0.5", "scheduler.gamma: no such key; scheduler=step has it"),
    ("experiment=1", "experiment=1: config group override must be a string or a list. Got int; did you mean "
     "experiment=1_manual_gradient_computation?"),
]


def says(line: str, message: str) -> bool:
    """Whether a command's one line is `error: MESSAGE`, or starts with it where MESSAGE ends with " ..."."""
    if message.endswith(" ..."):
        return line.startswith(f"error: {message[:-4]}")
    return line == f"error: {message}"
