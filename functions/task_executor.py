"""Pulsar Function entry point: a task executor (stateless, Shared subscription)."""

from pulsarflow.pulsar.function import EngineFunction


class TaskExecutorFunction(EngineFunction):
    """Runs the user's tasks of one service; configured by userConfig (see functions.yaml)."""
