"""Moved to pulsarflow.interpreter.registry (kept while code written against the old path is updated)."""

from pulsarflow.interpreter.registry import *  # noqa: F403
