"""``python -m tests.as_main MODULE ARGS`` runs ``python -m MODULE ARGS`` (``server.cli``, the
tests' server processes) as the suite's subprocesses should, two costs of the test process
left out as it leaves them out:

- the cheap password hasher (tests/hashing.py): ``onewindow setup`` would otherwise spend
  ~0.2 s of CPU on each of the demo's 36 users; tests/test_auth_parameters.py proves the
  production parameters;
- Tortoise's search of each model class's source for ``#:`` field comments (53 models, the
  whole storage/models.py parsed for each: ~1.7 s of every process's import of it), which
  finds none: tests/test_models_source.py proves that, so the models come out the same.
"""

from __future__ import annotations

import runpy
import sys

import tortoise.models

from tests.hashing import CHEAP_HASHER


def _no_comments(cls: type) -> dict[str, str]:
    return {}


def main() -> None:
    module, *args = sys.argv[1:]
    tortoise.models._get_comments = _no_comments  # before storage.models is imported
    from approval.core import auth

    auth._hasher = CHEAP_HASHER
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
