"""Synthetic regression data, made in memory from a seed: nothing is downloaded."""

import itertools

import lightning as L
import torch

Batch = tuple[torch.Tensor, torch.Tensor]


class RepeatedBatch:
    """The same batch `length` times: a run over one fixed batch is one epoch (epoch hooks, checkpoints once)."""

    def __init__(self, batch: Batch, length: int):
        self.batch, self.length = batch, length

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        return itertools.repeat(self.batch, self.length)


def shard(batch: Batch, rank: int, world_size: int) -> Batch:
    """Rank `rank`'s contiguous slice of a global batch's rows (sizes differ by at most one)."""
    if len(batch[0]) < world_size:
        raise ValueError(f"a batch of {len(batch[0])} rows cannot be split over {world_size} processes")
    return tuple(t.tensor_split(world_size)[rank] for t in batch)


class SyntheticRegression(L.LightningDataModule):
    """x ~ N(0, 1) (batch_size, input_dim); y (batch_size, output_dim): target="random" N(0, 1) as in the tutorial
    (val and test score the training batch), "teacher" a fixed random ReLU net's output + noise_std * N(0, 1) with
    held-out val and test sets (`teacher_seed`, default `seed`, draws the net). Drawn on the CPU, sharded by rank."""

    def __init__(self, batch_size: int = 64, input_dim: int = 1000, output_dim: int = 10, steps: int = 500,
                 target: str = "random", noise_std: float = 0.1, teacher_hidden_dim: int = 32, val_size: int = 64,
                 test_size: int = 64, seed: int = 0, teacher_seed: int | None = None):
        super().__init__()
        if target not in ("random", "teacher"):
            raise ValueError(f"target must be 'random' or 'teacher', got {target!r}")
        self.save_hyperparameters()
        self.train_batch: Batch | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_batch is not None:
            return
        hp, trainer = self.hparams, self.trainer
        rank, world_size, device = (0, 1, "cpu") if trainer is None else \
            (trainer.global_rank, trainer.world_size, trainer.strategy.root_device)
        gen = torch.Generator().manual_seed(hp.seed)
        if hp.target == "random":
            batches = [(torch.randn(hp.batch_size, hp.input_dim, generator=gen),
                        torch.randn(hp.batch_size, hp.output_dim, generator=gen))]
        else:
            teacher = self._teacher(gen)  # drawn even when replaced, so the samples after it stay the same
            if hp.teacher_seed is not None and hp.teacher_seed != hp.seed:
                teacher = self._teacher(torch.Generator().manual_seed(hp.teacher_seed))
            batches = [self._teacher_batch(teacher, n, gen) for n in (hp.batch_size, hp.val_size, hp.test_size)]
        local = [tuple(t.to(device) for t in shard(batch, rank, world_size)) for batch in batches]
        self.train_batch, self.val_batch, self.test_batch = local * 3 if len(local) == 1 else local

    def _teacher(self, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        hp = self.hparams  # scaled so that the teacher's outputs have unit-order variance whatever the sizes
        return (torch.randn(hp.input_dim, hp.teacher_hidden_dim, generator=gen) / hp.input_dim**0.5,
                torch.randn(hp.teacher_hidden_dim, hp.output_dim, generator=gen) / hp.teacher_hidden_dim**0.5)

    def _teacher_batch(self, teacher, n: int, gen: torch.Generator) -> Batch:
        x = torch.randn(n, self.hparams.input_dim, generator=gen)
        noise = torch.randn(n, self.hparams.output_dim, generator=gen)
        return x, x.mm(teacher[0]).clamp(min=0).mm(teacher[1]) + self.hparams.noise_std * noise

    def train_dataloader(self) -> RepeatedBatch:
        return RepeatedBatch(self.train_batch, self.hparams.steps)

    def val_dataloader(self) -> RepeatedBatch:
        # Under overfit_batches=f < 1 Lightning also takes int(f × the val batches): repeat the one batch enough.
        fraction = self.trainer.overfit_batches if self.trainer is not None else 0
        fraction = fraction if isinstance(fraction, float) and 0 < fraction < 1 else 1.0
        return RepeatedBatch(self.val_batch, next(n for n in itertools.count(1) if int(n * fraction) >= 1))

    def test_dataloader(self) -> RepeatedBatch:
        return RepeatedBatch(self.test_batch, 1)
