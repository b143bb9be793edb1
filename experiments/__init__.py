"""The course's experiment commands: they train and measure what the notebooks show.

Run from the repository root, e.g. ``python -m experiments.train --help``. Each command writes one
JSON record (command, date, machine, versions, load average, results) with
:mod:`experiments.harness`, and never replaces an existing output without ``--overwrite``.
``vitlib`` holds the model and what the notebooks import; nothing in ``vitlib`` imports this package.
"""
