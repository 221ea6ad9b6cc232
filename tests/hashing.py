"""The suite's password hasher: production argon2 parameters cost about 0.1 s a hash, and the
suite creates thousands of users, so it hashes with the cheapest parameters instead (in the
test process, see ``production_hasher`` in tests/conftest.py, and in the ``onewindow``
subprocesses, see tests/as_main.py); tests/test_auth_parameters.py proves the production
ones."""

from __future__ import annotations

from argon2 import PasswordHasher

CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
