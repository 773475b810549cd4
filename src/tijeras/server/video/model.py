"""The SAM 2 tracker of the server's video mode, loaded on first use."""

from __future__ import annotations

import threading
from typing import Any

from ...errors import TijerasError
from ..settings import ServerSettings
from .entry import VideoModelError


class VideoModels:
    """The SAM 2 tracker of the server, loaded on first use.

    The server's own model when it is a SAM 2 model, else ``settings.video_model`` (from
    ``settings.video_checkpoint``, the weights cache, or a download when allowed). A model that
    cannot be had is a :class:`VideoModelError` saying how to add it.
    """

    def __init__(
        self, settings: ServerSettings, model: Any = None, main: Any = None, main_name: str = ""
    ) -> None:
        self.settings = settings
        self._model = model
        self._main = main
        self._main_name = main_name
        self._tracker: Any = None
        self._error: str | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        from ...models.sam2.model import Sam2Model

        if self._model is not None:
            return str(getattr(self._model, "name", None) or self.settings.video_model)
        if isinstance(self._main, Sam2Model):
            return self._main_name or "the server's SAM 2 model"
        return self.settings.video_model

    def tracker(self) -> Any:
        with self._lock:
            if self._tracker is None:
                if self._error is not None:
                    raise VideoModelError(self._error)
                try:
                    self._tracker = self._load()
                except TijerasError as err:
                    self._error = str(err)
                    raise VideoModelError(self._error) from None
            return self._tracker

    def _load(self) -> Any:
        from ...models.sam2.model import Sam2Model
        from ...models.sam2.video_config import tracking_config
        from ...video.tracker import VideoTracker

        model = self._model
        main = self._main
        if model is None and isinstance(main, Sam2Model):
            # tracking runs in one precision: a mixed one (--dtype auto) loads its own copy
            if len({p.dtype for p in main.parameters()}) == 1:
                model = main
            else:
                model = _load_video_model(
                    self.settings, self._main_name or self.settings.model, self.settings.checkpoint
                )
        if model is None:
            model = _load_video_model(
                self.settings, self.settings.video_model, self.settings.video_checkpoint
            )
        return VideoTracker(model, tracking_config(model.config))


def _load_video_model(settings: ServerSettings, name: str, checkpoint: str | None) -> Any:
    """A SAM 2 model in one precision: ``bfloat16`` when the server runs in it, else float32
    (``auto`` gives a bfloat16 encoder behind a float32 decoder, which tracking cannot mix)."""
    import torch

    from ...api import load_model
    from ...catalog import get_spec
    from ...hub.download import cached_checkpoint, download
    from ...models.sam2.model import Sam2Model

    spec = get_spec(name)
    if spec.family != "sam2":
        raise TijerasError(f"--video-model {name}: video tracking needs a SAM 2 model")
    found: Any = checkpoint
    if found is None and spec.checkpoint is not None:
        found = cached_checkpoint(spec.name, settings.cache)
        if found is None and settings.download:
            try:
                found = download(spec.name, settings.cache, timeout=settings.download_timeout)
            except TijerasError as err:
                raise TijerasError(
                    f"video tracking needs the weights of {spec.name}, which could not be "
                    f"downloaded ({err}); run `tijeras download {spec.name}` on a machine "
                    "with internet access, or start the server with --video-checkpoint PATH"
                ) from None
        if found is None:
            raise TijerasError(
                f"video tracking needs the weights of {spec.name}: run `tijeras download "
                f"{spec.name}`, or start the server with --video-checkpoint PATH"
            )
    if found is None:
        torch.manual_seed(0)  # random-weight test models: the same model on every start
    dtype = "bfloat16" if settings.dtype == "bfloat16" else "float32"
    model = load_model(spec.name, found, device=settings.device, dtype=dtype)
    if not isinstance(model, Sam2Model):
        raise TijerasError(f"--video-model {name}: video tracking needs a SAM 2 model")
    return model
