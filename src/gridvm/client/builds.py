"""Recipe builds: load a recipe file, submit it, follow the build, read its log."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import yaml
from pydantic import TypeAdapter, ValidationError

from gridvm.client.transport import Transport
from gridvm.common.errors import InvalidInput
from gridvm.schemas.builds import MAX_FILES_BYTES, BuildCacheOut, BuildOut, BuildState, Recipe

_BUILD = TypeAdapter(BuildOut)
_BUILDS = TypeAdapter(list[BuildOut])
_CACHE = TypeAdapter(BuildCacheOut)
FINAL = frozenset({BuildState.succeeded, BuildState.failed})


def _validation_message(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "recipe"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        problems.append(f"{where}: {message}")
    return "; ".join(problems)


def load_recipe(path: Path) -> Recipe:
    """Read and check a recipe (YAML); ``source`` files are read (relative to the recipe)
    and sent as ``content``. Raises InvalidInput saying what is wrong."""
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path} is not valid YAML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"{path} must hold a mapping (name:, template:, packages: ...)")
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(
            f"{path}: {_validation_message(exc)}",
            hint="keys: name, template, description, packages, repositories, files, run",
        ) from None
    files = []
    total = 0
    for entry in recipe.files:
        if entry.source is not None:
            source = (path.parent / entry.source).expanduser()
            try:
                content = source.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidInput(
                    f"{path}: file {entry.path}: cannot read {source}: {exc}",
                    hint="'source' must be a local text file",
                ) from exc
            entry = entry.model_copy(update={"content": content, "source": None})
        total += len((entry.content or "").encode())
        files.append(entry)
    if total > MAX_FILES_BYTES:
        raise InvalidInput(f"{path}: the files hold {total} bytes, more than {MAX_FILES_BYTES}")
    return recipe.model_copy(update={"files": files})


class Builds:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def submit(self, recipe: Recipe) -> BuildOut:
        """Queue a build; the record (id, state, the class it will get) comes back at once."""
        body = recipe.model_dump(mode="json", exclude_none=True)
        return self._t.send("POST", "/builds", _BUILD, json=body)

    def get(self, ref: str) -> BuildOut:
        """A build by id, or the build that made image ``ref``."""
        return self._t.get(f"/builds/{quote(ref, safe='')}", _BUILD)

    def list(self) -> list[BuildOut]:
        return self._t.get("/builds", _BUILDS)

    def log(self, ref: str) -> str:
        response = self._t.request("GET", f"/builds/{quote(ref, safe='')}/log")
        return response.text

    def wait(
        self,
        ref: str,
        *,
        interval: float = 1.0,
        timeout: float | None = None,
        on_update: Callable[[BuildOut], None] | None = None,
    ) -> BuildOut:
        """Poll until the build succeeded or failed (``on_update`` sees each state)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            build = self.get(ref)
            if on_update is not None:
                on_update(build)
            if build.state in FINAL:
                return build
            if deadline is not None and time.monotonic() > deadline:
                return build
            time.sleep(interval)

    def cache(self) -> BuildCacheOut:
        """The site's package cache for builds (admins)."""
        return self._t.get("/admin/build-cache", _CACHE)

    def clear_cache(self) -> BuildCacheOut:
        """Empty the site's package cache (admins); what was removed."""
        return self._t.send("DELETE", "/admin/build-cache", _CACHE)
