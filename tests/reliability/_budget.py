"""Budgets of the reliability suite: trial counts and seconds read from environment variables,
so a longer local run can raise them; the defaults keep the whole suite to a few minutes on two
cores. Each test module's docstring names its variables and their defaults."""

from __future__ import annotations

import os


def env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default
