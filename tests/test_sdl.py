"""The committed SDL is the schema the code serves."""

from schema.app import SDL_PATH, export_sdl


def test_committed_sdl_is_current() -> None:
    assert SDL_PATH.read_text(encoding="utf-8") == export_sdl(), (
        "schema/schema.graphql is out of date: run `make sdl` (python -m schema.export) "
        "and commit the result"
    )


def test_sdl_has_the_api_the_clients_use() -> None:
    sdl = export_sdl()
    for name in (
        "createProject",
        "acceptStageApplication",
        "submitMaterial",
        "decideTask",
        "requestSupplement",
        "login",
        "projects(",
        "node(",
        "project(code",
        "viewer",
    ):
        assert name in sdl, name
