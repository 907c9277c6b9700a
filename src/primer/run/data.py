"""Synthetic regression data, made in memory from a seed: nothing is downloaded."""

import itertools
import math

import lightning as L
import torch

Batch = tuple[torch.Tensor, torch.Tensor]


class RepeatedBatch:
    """An iterable that yields the same batch `length` times.

    The primer trains on one fixed batch; repeating it for max_steps steps makes the whole
    run one epoch, so epoch hooks and checkpoints happen once, not once per step.
    """

    def __init__(self, batch: Batch, length: int):
        self.batch = batch
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        return itertools.repeat(self.batch, self.length)


def shard(batch: Batch, rank: int, world_size: int) -> Batch:
    """Rank `rank`'s contiguous slice of the rows of a global batch (sizes differ by at most one)."""
    rows = len(batch[0])
    if rows < world_size:
        raise ValueError(f"a batch of {rows} rows cannot be split over {world_size} processes")
    return tuple(t.tensor_split(world_size)[rank] for t in batch)


class SyntheticRegression(L.LightningDataModule):
    """x ~ N(0, 1) of shape (batch_size, input_dim); y of shape (batch_size, output_dim).

    target="random": y ~ N(0, 1), unrelated to x, as in the primer. There is nothing to
        generalize, so validation and test score the fit on the training batch itself.
    target="teacher": y = teacher(x) + noise_std * N(0, 1), the teacher a fixed random
        ReLU net, with held-out validation and test sets drawn the same way. `seed` draws the
        samples, `teacher_seed` (default: `seed`) the teacher: another `seed` alone gives new
        samples of the same teacher, another `teacher_seed` alone a new teacher of the same x.

    All tensors come from a generator seeded with `seed`, on the CPU, so the data is the
    same bits on every device; they are then moved once to the training device and stay there.
    Under DDP every rank makes the same global batches and keeps its own disjoint slice of
    rows (`shard`): the ranks together see each row once, and the global batch is batch_size.
    """

    def __init__(
        self,
        batch_size: int = 64,
        input_dim: int = 1000,
        output_dim: int = 10,
        steps: int = 500,
        target: str = "random",
        noise_std: float = 0.1,
        teacher_hidden_dim: int = 32,
        val_size: int = 64,
        test_size: int = 64,
        seed: int = 0,
        teacher_seed: int | None = None,
    ):
        super().__init__()
        if target not in ("random", "teacher"):
            raise ValueError(f"target must be 'random' or 'teacher', got {target!r}")
        self.save_hyperparameters()
        self.train_batch: Batch | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_batch is not None:
            return
        hp = self.hparams
        rank, world_size, device = 0, 1, torch.device("cpu")
        if self.trainer is not None:
            trainer = self.trainer
            rank, world_size, device = trainer.global_rank, trainer.world_size, trainer.strategy.root_device

        def local(batch: Batch) -> Batch:  # this rank's rows, on its device
            return tuple(t.to(device) for t in shard(batch, rank, world_size))

        gen = torch.Generator().manual_seed(hp.seed)
        if hp.target == "random":
            x = torch.randn(hp.batch_size, hp.input_dim, generator=gen)
            y = torch.randn(hp.batch_size, hp.output_dim, generator=gen)
            self.train_batch = self.val_batch = self.test_batch = local((x, y))
        else:
            teacher = self._teacher(gen)  # drawn even when replaced, so the samples after it stay the same
            if hp.teacher_seed is not None and hp.teacher_seed != hp.seed:
                teacher = self._teacher(torch.Generator().manual_seed(hp.teacher_seed))
            self.train_batch, self.val_batch, self.test_batch = (
                local(self._teacher_batch(teacher, n, gen)) for n in (hp.batch_size, hp.val_size, hp.test_size)
            )

    def _teacher(self, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        hp = self.hparams
        # Scaled so that the teacher's outputs have unit-order variance whatever the sizes.
        w1 = torch.randn(hp.input_dim, hp.teacher_hidden_dim, generator=gen) / hp.input_dim**0.5
        w2 = torch.randn(hp.teacher_hidden_dim, hp.output_dim, generator=gen) / hp.teacher_hidden_dim**0.5
        return w1, w2

    def _teacher_batch(self, teacher, n: int, gen: torch.Generator) -> Batch:
        w1, w2 = teacher
        x = torch.randn(n, self.hparams.input_dim, generator=gen)
        noise = torch.randn(n, self.hparams.output_dim, generator=gen)
        return x, x.mm(w1).clamp(min=0).mm(w2) + self.hparams.noise_std * noise

    def train_dataloader(self) -> RepeatedBatch:
        return RepeatedBatch(self.train_batch, self.hparams.steps)

    def val_dataloader(self) -> RepeatedBatch:
        return RepeatedBatch(self.val_batch, self._val_repeats())

    def _val_repeats(self) -> int:
        """1; under Trainer(overfit_batches=f) with a fraction f, enough repeats of the one val batch that f of them
        is a whole one. Lightning takes f of the val batches too (it sets limit_val_batches to f, so its advice to
        raise limit_val_batches cannot help), and f of a single batch is none. Repeats score as the batch does."""
        fraction = self.trainer.overfit_batches if self.trainer is not None else 0
        if not (isinstance(fraction, float) and 0 < fraction < 1):
            return 1
        repeats = math.ceil(1 / fraction)
        while int(repeats * fraction) < 1:  # as Lightning rounds: int(length * fraction)
            repeats += 1
        return repeats

    def test_dataloader(self) -> RepeatedBatch:
        return RepeatedBatch(self.test_batch, 1)
