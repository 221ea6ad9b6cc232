"""One OneWindow server instance in its own process, for the tests of several instances.

``python -m tests.instance_process`` serves ``server.app.create_app`` exactly as ``onewindow
serve`` does (settings from the environment, JSON logs, graceful shutdown), with one addition
for the tests: ``ONEWINDOW_TEST_CLOCK`` (an ISO 8601 moment) fixes the app's clock, so the
supervisor fires the warnings the test arranged whatever today's date is.
"""

from __future__ import annotations

import os
from datetime import datetime

from server.app import create_app
from server.cli import serve
from server.settings import Settings


def main() -> None:
    settings = Settings.from_env()
    fixed = os.environ.get("ONEWINDOW_TEST_CLOCK", "")
    moment = datetime.fromisoformat(fixed) if fixed else None
    app = create_app(settings, clock=(lambda: moment) if moment is not None else None)
    serve(settings, app)


if __name__ == "__main__":
    main()
