"""Everything that talks to Apache Pulsar: one package, so a Pulsar change has one place to go.

- ``connection`` (+ ``connection_http``, ``connection_errors``, ``connection_check``): one
  connection configuration (client.conf keys, ``PULSAR_*`` variables, flags) for every part;
- ``transport``, ``registry``, ``deadletters``: the Transport port over producers and
  consumers, the schema registry as a writer source, the dead-letter topic;
- ``function``, ``function_state``, ``cancellations``, ``contract_function``: the engines as
  Pulsar Functions, function state as a StateStore, the cancellation broadcast;
- ``worker``, ``engine_worker``: executors and engines as plain processes (no Functions);
- ``events_feed``: the visibility feed from the events topic.

The ``pulsar`` client is imported by the modules that need it, not here, so the package
imports without the ``pulsar`` extra.
"""
