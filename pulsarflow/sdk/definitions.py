"""Moved to pulsarflow.interpreter.definitions (kept while code written against the old path is updated)."""

from pulsarflow.interpreter.definitions import *  # noqa: F403
