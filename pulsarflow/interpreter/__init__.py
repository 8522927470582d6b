"""The workflow interpreter: runs workflow code over its history, deterministically.

``definitions`` (``@task``, ``@workflow``, retry policies) and ``registry`` describe user
code; ``context`` is what workflow code may call, ``steps`` what it awaits and
``requests`` what each step asks for; ``sandbox`` keeps the code deterministic and
``replay`` drives it over a ``WorkflowState``. It imports only the layers below it
(messages, errors, the payload converter, failures); the engines and the SDK import it.
"""
