"""The pulsarflow web dashboard (``pulsarflow dashboard``): see :mod:`pulsarflow.dashboard.server`."""
