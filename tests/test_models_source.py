"""The tests' subprocesses skip Tortoise's search for ``#:`` field comments in the models'
source (tests/as_main.py); that changes nothing as long as the search finds none."""

from __future__ import annotations

import tortoise.models

from storage import models


def test_no_model_has_field_comments_for_tortoise_to_find() -> None:
    classes = [
        value
        for value in vars(models).values()
        if isinstance(value, type)
        and issubclass(value, tortoise.models.Model)
        and value.__module__ == models.__name__
    ]
    assert len(classes) > 40
    found = {cls.__name__: tortoise.models._get_comments(cls) for cls in classes}
    assert {name: comments for name, comments in found.items() if comments} == {}
