"""The production password hash: argon2id with argon2-cffi's recommended parameters.

The rest of the suite hashes with the cheapest parameters (``production_hasher`` in
tests/conftest.py swaps them in); this test checks what the code would use without the swap."""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.profiles import RFC_9106_LOW_MEMORY

from approval.core import auth


def test_production_hashes_use_the_recommended_argon2id_parameters(
    production_hasher: PasswordHasher,
) -> None:
    assert production_hasher is not auth._hasher  # the suite runs on the cheap one
    assert production_hasher.type is Type.ID
    assert production_hasher.time_cost >= RFC_9106_LOW_MEMORY.time_cost
    assert production_hasher.memory_cost >= RFC_9106_LOW_MEMORY.memory_cost
    encoded = production_hasher.hash("a password of the right length")
    assert encoded.startswith("$argon2id$")
    assert f"m={production_hasher.memory_cost},t={production_hasher.time_cost}" in encoded
