"""The files ``pulsarflow init`` writes for a new app (see :mod:`pulsarflow.scaffold`).

Each ``*.tmpl`` under ``app/`` is copied without its suffix, with ``{{app}}`` replaced by
the app's name and ``{{package}}`` by its Python package; the ``package/`` folder is
renamed to that package.
"""
