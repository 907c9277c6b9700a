"""The synthetic data module: shapes, seeding, and the held-out sets of the teacher task."""

import torch

from primer.run.data import SyntheticRegression


def batches(dm):
    dm.setup("fit")
    return list(dm.train_dataloader()), list(dm.val_dataloader()), list(dm.test_dataloader())


def test_random_task_repeats_one_fixed_batch_for_every_step():
    train, val, test = batches(SyntheticRegression(batch_size=5, input_dim=7, output_dim=3, steps=4))
    assert len(train) == 4
    x, y = train[0]
    assert x.shape == (5, 7) and y.shape == (5, 3)
    assert all(b is train[0] for b in train)
    assert val == [train[0]] and test == [train[0]]  # nothing to generalize: score the fit


def test_same_seed_same_data_and_other_seed_other_data():
    a = batches(SyntheticRegression(input_dim=7, seed=3))[0][0]
    b = batches(SyntheticRegression(input_dim=7, seed=3))[0][0]
    c = batches(SyntheticRegression(input_dim=7, seed=4))[0][0]
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a[0], c[0])


def test_teacher_task_has_separate_sets_from_one_teacher():
    dm = SyntheticRegression(target="teacher", batch_size=400, input_dim=6, output_dim=2, val_size=50, test_size=60,
                             noise_std=0.0, steps=1)
    train, val, test = batches(dm)
    (x, y), (x_val, _), (x_test, _) = train[0], val[0], test[0]
    assert (x.shape[0], x_val.shape[0], x_test.shape[0]) == (400, 50, 60)
    assert not torch.equal(x[:50], x_val)
    x_again, y_again = batches(SyntheticRegression(target="teacher", batch_size=400, input_dim=6, output_dim=2,
                                                   noise_std=0.0, steps=1))[0][0]
    assert torch.equal(y, y_again)  # the teacher is fixed by the seed
    assert not torch.equal(y, torch.zeros_like(y)) and y.std() > 0.1


def test_teacher_seed_draws_the_teacher_and_seed_the_samples():
    def train_batch(**seeds):
        dm = SyntheticRegression(target="teacher", batch_size=30, input_dim=5, output_dim=2, noise_std=0.0, steps=1,
                                 **seeds)
        return batches(dm)[0][0]

    x0, y0 = train_batch(seed=0)
    x_samples, y_samples = train_batch(seed=1, teacher_seed=0)  # new samples, same teacher
    x_teacher, y_teacher = train_batch(seed=0, teacher_seed=1)  # same samples, new teacher
    assert torch.equal(train_batch(seed=0, teacher_seed=0)[1], y0)  # teacher_seed=seed: the default
    assert not torch.equal(x_samples, x0) and torch.equal(x_teacher, x0)
    w1, w2 = SyntheticRegression(input_dim=5, output_dim=2)._teacher(torch.Generator().manual_seed(0))
    assert torch.allclose(y_samples, x_samples.mm(w1).clamp(min=0).mm(w2))  # seed 0's teacher
    assert not torch.allclose(y_teacher, y0)
