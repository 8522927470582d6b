import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


import pytest  # noqa: E402  (after the path set-up above)


@pytest.fixture
def dashboard():  # type: ignore[no-untyped-def]
    """A dashboard served on localhost over an embedded run of tests.e2e.flows, with events on."""
    import pulsarflow as pf
    from pulsarflow.dashboard.embedded import EmbeddedDashboard
    from tests.e2e import flows

    flows.FLAKY.clear()
    env = pf.EmbeddedEnvironment(*flows.ALL, events=True)
    board = EmbeddedDashboard(env).start()
    yield board
    board.stop()
    env.close()
