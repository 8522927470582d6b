"""Moved to pulsarflow.interpreter.sandbox (kept while code written against the old path is updated)."""

from pulsarflow.interpreter.sandbox import *  # noqa: F403
