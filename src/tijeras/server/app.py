"""The web app: ``create_app(settings)`` builds the FastAPI application.

The model is loaded in the lifespan handler (at start-up, not at import), unless a ready
:class:`~tijeras.server.backend.Backend` is passed in. Errors are JSON ``{"detail": message}``
with a 4xx status for anything the client did wrong; the server keeps serving.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..errors import ImageError, PromptError, TijerasError
from .backend import Backend, load_configured_backend, weights_hint
from .folder import Folder
from .geo import geo_available
from .jobs import HeavyQueue
from .routes import router
from .settings import SAMPLE_SUFFIXES, ServerSettings
from .store import ImageStore
from .text import takes_text
from .video import VideoModels, VideoStore

log = logging.getLogger("tijeras.server")
STATIC = Path(str(resources.files("tijeras.server") / "static"))


def create_app(
    settings: ServerSettings | None = None, backend: Backend | None = None, video_model: Any = None
) -> FastAPI:
    """The application; ``backend`` skips model loading (tests, embedding in other apps), and
    ``video_model`` (a SAM 2 model) that of the video tracker."""
    settings = settings or ServerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.backend = backend or load_configured_backend(settings)
        # Import everything a request may need now: torch creates an (empty) cache folder
        # when torchvision is first imported, which must not happen during a visit.
        import tijeras.automatic.generator  # noqa: F401

        app.state.queue = HeavyQueue()
        app.state.video_models = VideoModels(
            settings, video_model, app.state.backend.model, app.state.backend.name
        )
        log.info("serving %s on %s", app.state.backend.name, settings.device)
        yield
        app.state.queue.close()

    app = FastAPI(
        title="tijeras",
        version=__version__,
        description="Segment Anything, local and private: upload, prompt, everything, export.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = ImageStore(settings.max_images, settings.ttl_seconds, settings.max_masks)
    app.state.folder = Folder(settings.folder) if settings.folder else None
    app.state.videos = VideoStore(settings.max_videos, settings.ttl_seconds)
    _add_error_handlers(app)
    _add_pages(app, settings)
    app.include_router(router, prefix="/api")
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        messages = []
        for error in exc.errors():
            loc = list(error.get("loc", ()))
            if loc and loc[0] in ("body", "query", "path", "header"):
                loc = loc[1:]  # "dilate: ...", not "query.dilate: ..."
            where = ".".join(str(p) for p in loc)
            text = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
            messages.append(f"{where}: {text}" if where else text)
        return JSONResponse({"detail": "; ".join(messages)}, status_code=422)

    @app.exception_handler(PromptError)
    async def prompt_error(_: Request, exc: PromptError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(ImageError)
    async def image_error(_: Request, exc: ImageError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=415)

    @app.exception_handler(TijerasError)
    async def tijeras_error(_: Request, exc: TijerasError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)


def _samples(settings: ServerSettings) -> dict[str, Path]:
    if not settings.samples:
        return {}
    folder = Path(settings.samples)
    if not folder.is_dir():
        return {}
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in SAMPLE_SUFFIXES)
    return {p.name: p for p in files if p.is_file()}


def _add_pages(app: FastAPI, settings: ServerSettings) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/api/info", tags=["server"])
    async def info(request: Request) -> dict[str, Any]:
        """The active model, whether the classical fallback runs, the upload limits, whether
        the model takes text prompts (``text``) and whether GeoTIFFs open with their
        georeference (``geo``: rasterio is installed)."""
        backend: Backend = request.app.state.backend
        return {
            "version": __version__,
            "model": backend.name,
            "description": backend.description,
            "fallback": backend.is_fallback,
            "fallback_reason": backend.fallback_reason,
            "requested_model": settings.model,
            "how_to_add_weights": weights_hint(settings.model) if backend.is_fallback else None,
            "device": settings.device,
            "dtype": settings.dtype,
            "precision": _precision(backend, settings.dtype),
            "max_upload_bytes": settings.max_upload_bytes,
            "max_pixels": settings.max_pixels,
            "samples": list(_samples(settings)),
            "folder": None if app.state.folder is None else app.state.folder.path.name,
            "max_images": settings.max_images,
            "video": {
                "model": app.state.video_models.name,
                "max_upload_bytes": settings.max_video_bytes,
                "max_frames": settings.max_video_frames,
                "max_seconds": settings.max_video_seconds,
                "max_pixels": settings.max_video_pixels,
                "max_videos": settings.max_videos,
            },
            "text": takes_text(backend.model),
            "geo": geo_available(),
        }

    @app.get("/api/samples/{name}", tags=["server"])
    async def sample(name: str) -> Response:
        """The bytes of one of the sample images listed by ``/api/info``."""
        path = _samples(settings).get(name)
        if path is None:
            raise HTTPException(404, f"no sample image named {name!r}")
        return FileResponse(path)


def _precision(backend: Backend, requested: str) -> dict[str, str] | None:
    """What the loaded model runs in and why (``--dtype auto`` explained), for the page header;
    ``None`` for the weightless classical backend, which has no precision to speak of."""
    from ..catalog import get_spec

    if backend.is_fallback or get_spec(backend.name).weightless:
        return None
    model = backend.model
    encoder = str(model.encoder_dtype).removeprefix("torch.")
    decoder = str(getattr(model, "dtype", model.encoder_dtype)).removeprefix("torch.")
    label = encoder if encoder == decoder else f"{encoder} encoder + {decoder} decoder"
    if requested != "auto":
        return {"label": label, "reason": f"--dtype {requested}"}
    from ..hub.precision import choose_precision

    return {"label": label, "reason": f"--dtype auto: {choose_precision(model.device).reason}"}
