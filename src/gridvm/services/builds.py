"""Recipe builds: ``POST /builds`` records a build, a background worker runs it.

A build starts from the Debian template's own recipe (its manifest records the
suite, mirror and packages it was made from), adds the recipe's packages and
repositories, its files, and its ``run`` commands (as an unprivileged user,
without network), all inside ``mmdebstrap --mode=unshare`` (user namespaces:
root in the build is not root on the host). The result is registered through
:meth:`ImageService.store_built` with the class decided at submission
(certified by construction, or user). The build log is a file in the server's
data directory, kept as long as the build record (also for failed builds).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gridvm.common.errors import (
    GridvmError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
)
from gridvm.common.names import new_id, validate_name
from gridvm.images.debian import apt_cache
from gridvm.images.debian.apt_cache import AptCache, CachedBuild, CacheUsage
from gridvm.images.debian.disk import build_disk
from gridvm.images.debian.mmdebstrap import Mode, PackageSpec, RootSpec
from gridvm.images.debian.recipe import StagedFile, decide_trust, failed_run_step, stage_recipe
from gridvm.images.debian.rootfs import STEPS, bootstrap_failure
from gridvm.images.debian.template import load_build_record
from gridvm.images.starter.build import _modules_dir
from gridvm.images.starter.packages import extract, fetch, resolve
from gridvm.schemas.builds import (
    BuildCacheKey,
    BuildCacheOut,
    BuildOut,
    BuildState,
    Recipe,
    RecipeFile,
)
from gridvm.schemas.images import TrustClass
from gridvm.services.images import QUOTA_HINT, ImageService, find_image
from gridvm.services.principal import Principal
from gridvm.services.storage_quotas import storage_refusal
from gridvm.store.db import Database
from gridvm.store.models import Image, ImageBuild, User

log = logging.getLogger(__name__)

TRUST_REASON = "trust_reason"
TEMPLATE_ID = "template_id"


def _now() -> datetime:
    return datetime.now(UTC)


def build_out(build: ImageBuild) -> BuildOut:
    recipe = build.recipe or {}
    return BuildOut(
        id=build.id,
        name=build.name,
        owner=build.owner.name,
        template=str(recipe.get("template", "")),
        state=BuildState(build.state),
        step=build.step,
        progress=build.progress,
        trust=TrustClass(build.trust) if build.trust else None,
        trust_reason=recipe.get(TRUST_REASON),
        image_id=build.image_id,
        error=build.error,
        created_at=build.created_at,
        started_at=build.started_at,
        finished_at=build.finished_at,
    )


@dataclasses.dataclass(frozen=True)
class TemplateRecord:
    """How to build a template again: its root spec and kernel, and, for a template an
    admin made from a build, the files and commands of the builds that made it."""

    spec: RootSpec
    kernel_package: str
    files: tuple[RecipeFile, ...] = ()
    run: tuple[str, ...] = ()

    def extended(self, recipe: Recipe) -> TemplateRecord:
        """This record with ``recipe``'s packages, repositories, files and commands after it."""
        spec = dataclasses.replace(
            self.spec,
            packages=self.spec.packages + tuple(PackageSpec.parse(p) for p in recipe.packages),
            extra_sources=self.spec.extra_sources + tuple(recipe.repositories),
        )
        return TemplateRecord(
            spec=spec.validated(),
            kernel_package=self.kernel_package,
            files=self.files + tuple(recipe.files),
            run=self.run + tuple(recipe.run),
        )


# Templates made from builds of templates made from builds...: a bound on the chain.
MAX_TEMPLATE_DEPTH = 8


def _recipe_of(build: ImageBuild) -> Recipe:
    data = {k: v for k, v in (build.recipe or {}).items() if k not in (TRUST_REASON, TEMPLATE_ID)}
    return Recipe.model_validate(data)


class BuildService:
    def __init__(
        self,
        db: Database,
        images: ImageService,
        starter_dir: Path | None,
        builds_dir: Path,
        certified_mirrors: tuple[str, ...],
        mode: Mode = Mode.unshare,
        package_cache: AptCache | None = None,
    ) -> None:
        self.db = db
        # The site's cache of the .debs builds downloaded (None: every build downloads all).
        self.package_cache = package_cache
        self._architecture: str | None = None
        self.images = images
        self.starter_dir = starter_dir
        self.builds_dir = builds_dir
        self.certified_mirrors = certified_mirrors
        self.mode = mode
        self.wakeup = threading.Event()
        # Set when the server stops: a running mmdebstrap is killed, the build fails.
        self.cancel = threading.Event()

    # --- requests -------------------------------------------------------------
    def submit(self, who: Principal, recipe: Recipe) -> BuildOut:
        validate_name(recipe.name, what="image name")
        if any(f.content is None for f in recipe.files):
            raise InvalidInput(
                "every file of a recipe needs its content",
                hint="gridvm image build reads 'source' files and sends their content",
            )
        packages = [PackageSpec.parse(p) for p in recipe.packages]
        with self.db.session() as s:
            template = find_image(s, who, recipe.template)
            spec = self._template_record(s, template).spec
            full = storage_refusal(s, who.user_id, who.primary_group_id, 0)
            if full is not None:  # no room for any image: refused before building
                raise PayloadTooLarge(f"image storage quota: {full}", hint=QUOTA_HINT)
            decision = decide_trust(
                template=template.name,
                template_trust=TrustClass(template.trust),
                template_mirror=spec.mirror,
                certified_mirrors=self.certified_mirrors,
                packages=packages,
                repositories=recipe.repositories,
                files=len(recipe.files),
                commands=len(recipe.run),
            )
            build = ImageBuild(
                id=new_id("bld"),
                owner_id=who.user_id,
                name=recipe.name,
                recipe={
                    **recipe.model_dump(mode="json", exclude_none=True),
                    TRUST_REASON: decision.reason,
                    TEMPLATE_ID: template.id,
                },
                state=BuildState.queued.value,
                step="queued",
                progress=0.0,
                trust=decision.trust.value,
            )
            s.add(build)
            s.flush()
            s.refresh(build)
            out = build_out(build)
        log.info("build %s of %s queued (%s)", out.id, recipe.name, decision.reason)
        self.wakeup.set()
        return out

    def _template_record(self, s: Session, template: Image, depth: int = 0) -> TemplateRecord:
        """How a Debian site template was built (a starter's manifest, or the build an admin
        made a template of, on top of its own template's record), or a 4xx saying why it
        cannot be extended."""
        hint = "build from a Debian site template, e.g. template: debian-12-minimal"
        if template.trust != TrustClass.site.value:
            raise InvalidInput(f"{template.name!r} is not a site template", hint=hint)
        starter = self.starter_dir / template.name if self.starter_dir is not None else None
        if template.source == "template" and starter is not None and starter.is_dir():
            try:
                spec, kernel = load_build_record(starter)
            except InvalidInput as exc:
                raise InvalidInput(
                    f"template {template.name!r} is not a Debian template: {exc.message}",
                    hint=hint,
                ) from exc
            return TemplateRecord(spec=spec, kernel_package=kernel)
        made_by = s.scalar(
            select(ImageBuild).where(
                ImageBuild.image_id == template.id,
                ImageBuild.state == BuildState.succeeded.value,
            )
        )
        parent = s.get(Image, str(made_by.recipe.get(TEMPLATE_ID))) if made_by else None
        if made_by is None or parent is None or depth >= MAX_TEMPLATE_DEPTH:
            raise InvalidInput(
                f"template {template.name!r} has no build record on this server", hint=hint
            )
        return self._template_record(s, parent, depth + 1).extended(_recipe_of(made_by))

    def _find(self, s: Session, who: Principal, ref: str) -> ImageBuild:
        """A build by id, or the build that made the image ``ref`` (id or name)."""
        build = s.get(ImageBuild, ref)
        if build is None:
            try:
                image = find_image(s, who, ref)
            except NotFound:
                raise NotFound(
                    f"no build or built image {ref!r}",
                    hint="see your builds with: gridvm image builds",
                ) from None
            build = s.scalar(
                select(ImageBuild)
                .where(ImageBuild.image_id == image.id)
                .order_by(ImageBuild.created_at.desc())
            )
        if build is None or not (who.is_admin or build.owner_id == who.user_id):
            raise NotFound(f"no build {ref!r}", hint="see your builds with: gridvm image builds")
        return build

    def get(self, who: Principal, ref: str) -> BuildOut:
        with self.db.session() as s:
            return build_out(self._find(s, who, ref))

    def list_builds(self, who: Principal) -> list[BuildOut]:
        with self.db.session() as s:
            query = select(ImageBuild).order_by(ImageBuild.created_at)
            if not who.is_admin:
                query = query.where(ImageBuild.owner_id == who.user_id)
            return [build_out(b) for b in s.scalars(query).unique().all()]

    def log_path(self, build_id: str) -> Path:
        return self.builds_dir / f"{build_id}.log"

    def read_log(self, who: Principal, ref: str) -> str:
        with self.db.session() as s:
            build_id = self._find(s, who, ref).id
        path = self.log_path(build_id)
        return path.read_text(errors="replace") if path.exists() else ""

    # --- the package cache (admins) ----------------------------------------------
    def cache_usage(self, who: Principal) -> BuildCacheOut:
        who.require_admin()
        if self.package_cache is None:
            return BuildCacheOut(enabled=False, directory=None, max_bytes=0, files=0, bytes=0)
        return _cache_out(self.package_cache.usage())

    def clear_cache(self, who: Principal) -> BuildCacheOut:
        """Empty the cache; what was in it."""
        who.require_admin()
        if self.package_cache is None:
            return self.cache_usage(who)
        removed = self.package_cache.clear()
        log.info("package cache cleared by %s: %d files", who.name, removed.files)
        return _cache_out(removed)

    # --- the worker's side ------------------------------------------------------
    def fail_interrupted(self) -> None:
        """At server start: builds that were running when it stopped cannot go on."""
        with self.db.session() as s:
            s.execute(
                update(ImageBuild)
                .where(ImageBuild.state == BuildState.running.value)
                .values(
                    state=BuildState.failed.value,
                    error="the server stopped during the build; build again",
                    finished_at=_now(),
                )
            )

    def claim_next(self) -> str | None:
        """Mark the oldest queued build running and return its id (None if none)."""
        with self.db.session() as s:
            build_id = s.scalar(
                select(ImageBuild.id)
                .where(ImageBuild.state == BuildState.queued.value)
                .order_by(ImageBuild.created_at)
                .limit(1)
            )
            if build_id is None:
                return None
            claimed = s.execute(
                update(ImageBuild)
                .where(ImageBuild.id == build_id, ImageBuild.state == BuildState.queued.value)
                .values(state=BuildState.running.value, started_at=_now(), step="starting")
            )
            return build_id if claimed.rowcount == 1 else None  # type: ignore[attr-defined]

    def _set(self, build_id: str, **values: Any) -> None:
        with self.db.session() as s:
            s.execute(update(ImageBuild).where(ImageBuild.id == build_id).values(**values))

    def run_build(self, build_id: str) -> None:
        """Run one claimed build to its end (succeeded or failed); never raises."""
        self.builds_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{build_id}.", dir=self.builds_dir))
        with self.log_path(build_id).open("a") as log_file:
            progress = _Progress(self, build_id)

            def log_line(line: str) -> None:
                log_file.write(line + "\n")
                log_file.flush()
                progress.saw(line)

            final: dict[str, Any]
            try:
                image_id = self._build(build_id, work, log_line)
            except GridvmError as exc:
                error = exc.message
                log_line(f"E: build failed: {error}")
                final = {"state": BuildState.failed.value, "error": error}
            except Exception as exc:
                log_line("E: internal error: " + "".join(traceback.format_exception(exc)))
                log.exception("build %s failed", build_id)
                final = {"state": BuildState.failed.value, "error": f"internal error: {exc}"}
            else:
                log_line(f"I: image {image_id} registered")
                final = {
                    "state": BuildState.succeeded.value,
                    "step": "done",
                    "progress": 1.0,
                    "image_id": image_id,
                }
            # Nothing of the build is left behind once its end is visible.
            shutil.rmtree(work, ignore_errors=True)
            self._set(build_id, finished_at=_now(), **final)

    def _build(self, build_id: str, work: Path, log_line: Callable[[str], None]) -> str:
        with self.db.session() as s:
            build = s.get_one(ImageBuild, build_id)
            recipe = _recipe_of(build)
            template = s.get(Image, str(build.recipe.get(TEMPLATE_ID)))
            if template is None:
                raise NotFound(f"the template {recipe.template!r} was deleted")
            record = self._template_record(s, template).extended(recipe)
            owner_id, template_id = build.owner_id, template.id
            trust = TrustClass(build.trust or TrustClass.user.value)
            reason = str(build.recipe.get(TRUST_REASON, ""))
            owner = s.get_one(User, owner_id).name
        log_line(f"I: build {build_id} of {recipe.name} for {owner} from {recipe.template}")
        log_line(f"I: class: {reason}")
        spec, run = record.spec, list(record.run)
        self._set(build_id, step="fetching the kernel modules", progress=0.01)
        (kernel,) = resolve([record.kernel_package])
        kernel_root = extract(fetch(kernel, self.builds_dir / ".debs"), work / "kernel")
        files = [
            StagedFile(path=f.path, mode=f.mode, content=(f.content or "").encode())
            for f in record.files
        ]
        hook = stage_recipe(work / "recipe", files, run)
        (work / "disk").mkdir()
        qcow2 = work / "disk.qcow2"
        cached: CachedBuild | None = None
        if self.package_cache is not None:
            if self._architecture is None:
                self._architecture = apt_cache.host_architecture()
            cached = CachedBuild.prepare(self.package_cache, spec, self._architecture, work)
            log_line(
                f"I: package cache {cached.key[:12]}: {len(cached.had)} packages for this build"
            )

        def failure(output: list[str]) -> str:
            step = failed_run_step(output)
            if step is not None:
                command = run[step - 1].strip().splitlines()[0][:200]
                return f"run command {step} failed: {command}"
            return bootstrap_failure(output)

        try:
            build_disk(
                spec,
                _modules_dir(kernel_root),
                work / "disk",
                qcow2,
                log_line,
                extra_hooks=[hook],
                first_hooks=cached.hooks() if cached is not None else (),
                skip=apt_cache.SKIP if cached is not None else (),
                mode=self.mode,
                env={"TMPDIR": str(work)},
                failure=failure,
                cancel=self.cancel,
            )
        finally:  # also for a failed build, once apt got its packages
            use = cached.use() if cached is not None else None
            if use is not None and use.from_cache + use.downloaded:
                log_line(use.log_line())
        self._set(build_id, step="registering the image", progress=0.95)
        log_line("I: registering the image")
        image = self.images.store_built(
            owner_id,
            recipe.name,
            qcow2,
            template_id=template_id,
            trust=trust,
            certification=reason if trust == TrustClass.certified else None,
        )
        if cached is not None:  # only a build that succeeded adds to the cache
            cached.fill(log_line)
        return image.id


def _cache_out(usage: CacheUsage) -> BuildCacheOut:
    return BuildCacheOut(
        enabled=True,
        directory=str(usage.directory),
        max_bytes=usage.max_bytes,
        files=usage.files,
        bytes=usage.bytes,
        keys=[
            BuildCacheKey(
                key=k.key,
                files=k.files,
                bytes=k.bytes,
                last_used=datetime.fromtimestamp(k.last_used, UTC) if k.last_used else None,
            )
            for k in usage.keys
        ],
    )


class _Progress:
    """Turns mmdebstrap's output into the build's step and progress (at most 2 writes/s)."""

    def __init__(self, service: BuildService, build_id: str) -> None:
        self.service = service
        self.build_id = build_id
        self.last = 0.0
        self.fraction = 0.0

    def saw(self, line: str) -> None:
        step = None
        for prefix, label, fraction in STEPS:
            if line.startswith(prefix) and fraction >= self.fraction:
                step, self.fraction = label, fraction
        if line.startswith("gridvm-build: "):
            step = line.removeprefix("gridvm-build: ")[:200]
            self.fraction = max(self.fraction, 0.7)
        if line.startswith("I: unpacking the root"):
            step, self.fraction = "unpacking the root file system", 0.8
        if line.startswith("I: making a "):
            step, self.fraction = "making the disk image", 0.85
        if step is None:
            return
        now = time.monotonic()
        if now - self.last < 0.5 and not line.startswith("gridvm-build: run"):
            return
        self.last = now
        self.service._set(self.build_id, step=step, progress=self.fraction)


class BuildWorker:
    """Runs queued builds in the background, ``parallel`` at a time."""

    def __init__(self, service: BuildService, parallel: int = 1) -> None:
        self.service = service
        self.parallel = parallel
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self.service.fail_interrupted()
        for number in range(self.parallel):
            thread = threading.Thread(target=self._run, name=f"gridvm-builds-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self.service.cancel.set()
        self.service.wakeup.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                build_id = self.service.claim_next()
                if build_id is not None:
                    self.service.run_build(build_id)
                    continue
            except Exception:
                log.exception("build worker pass failed; trying again")
            self.service.wakeup.wait(2.0)
            self.service.wakeup.clear()
