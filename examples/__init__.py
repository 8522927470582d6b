"""Runnable example workflows: ``python -m examples.order`` and friends."""
