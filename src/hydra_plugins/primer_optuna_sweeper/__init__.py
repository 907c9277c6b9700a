"""primer's Hydra sweeper on Optuna's ask/tell API: `hydra/sweeper=primer_optuna` (hparams_search=optuna).

It reads hydra-optuna-sweeper's keys (sampler, direction, storage, study_name, n_trials, n_jobs,
max_failure_rate, params) plus `pruner`. Hydra finds it through its `hydra_plugins` namespace package.
"""
