"""One module per system: ``unavailable(settings)`` says why it cannot run here (or None),
``run(cases, concurrency, settings)`` runs the cases and returns one figures row per case."""
