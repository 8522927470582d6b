"""Pulsar Function entry point: the tag engine (keyed by tag bucket or custom id, Key_Shared)."""

from pulsarflow.pulsar.function import EngineFunction


class TagEngineFunction(EngineFunction):
    """Runs pulsarflow's tag engine; configured by userConfig (see functions.yaml)."""
