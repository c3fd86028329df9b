"""Optuna tuning (issue 13): one study per (task, dataset, variant, model, method, compression,
fold), on that fold's own validation slice, never on test.

* :mod:`cel.tune.space`     a configured search space -> trial suggestions
* :mod:`cel.tune.objective` one trial = one run on train minus validation, pruned on its curve
* :mod:`cel.tune.study`     storage (journal file or RDB URL), seeded TPE, worker processes,
                            retries of failed or killed trials, ``best_params.yaml``
* :mod:`cel.tune.mirror`    the study as an MLflow parent run, each trial a nested run
"""
