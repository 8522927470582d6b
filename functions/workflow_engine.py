"""Pulsar Function entry point: the workflow engine (keyed by workflow id, Key_Shared)."""

from pulsarflow.pulsar.function import EngineFunction


class WorkflowEngineFunction(EngineFunction):
    """Runs pulsarflow's workflow engine; configured by userConfig (see functions.yaml)."""
