"""Moved to pulsarflow.interpreter.context (kept while code written against the old path is updated)."""

from pulsarflow.interpreter.context import *  # noqa: F403
