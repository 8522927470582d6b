"""Moved to pulsarflow.interpreter.steps (kept while code written against the old path is updated)."""

from pulsarflow.interpreter.steps import *  # noqa: F403
