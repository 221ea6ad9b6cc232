"""``python -m tests.cli_process ARGS`` runs ``onewindow ARGS`` (``server.cli.main``, unchanged)
with the suite's cheap password hasher, as the in-process tests have it: ``onewindow setup``
would otherwise spend ~0.2 s of CPU on each of the demo's 36 users, and every subprocess test
that sets up the demo paid that. tests/test_auth_parameters.py proves the production
parameters.
"""

from __future__ import annotations

import sys

from approval.core import auth
from server.cli import main
from tests.hashing import CHEAP_HASHER

if __name__ == "__main__":
    auth._hasher = CHEAP_HASHER
    sys.exit(main())
