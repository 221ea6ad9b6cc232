"""Write the GraphQL SDL to schema/schema.graphql: `python -m schema.export`."""

from __future__ import annotations

from schema.app import SDL_PATH, export_sdl


def main() -> None:
    SDL_PATH.write_text(export_sdl(), encoding="utf-8")
    print(f"wrote {SDL_PATH}")


if __name__ == "__main__":
    main()
