"""pulsarflow side by side with other durable-execution engines (Temporal, DBOS, Restate).

    .venv/bin/python -m bench.peers            # see docs/peers.md

Every run of every system is a fresh subprocess; the project's systems run in the
project's venv, the peers in their own (``bench/peers/setup.sh``), so the peers never
become dependencies of pulsarflow.
"""
