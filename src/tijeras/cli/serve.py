"""``tijeras serve``: the web app on this machine (see :mod:`tijeras.server`).

The address is taken (the socket bound) before the model loads, so a port in use is one
``error:`` line at once rather than a message from the web server after the wait; the bound
socket is then handed to uvicorn.
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import Annotated, Any

import typer

from tijeras.cli.common import (
    CacheOption,
    CheckpointOption,
    DeviceOption,
    DType,
    DTypeOption,
    _check_device,
    _fail,
    _user_errors,
    app,
)
from tijeras.defaults import DEFAULT_MODEL


@app.command()
def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to bind (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port (0: any free port).")] = 8000,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model name or alias (see `tijeras models`).")
    ] = DEFAULT_MODEL,
    checkpoint: CheckpointOption = None,
    device: DeviceOption = "cpu",
    dtype: DTypeOption = DType.auto,
    cache: CacheOption = None,
    download: Annotated[
        bool,
        typer.Option(
            "--download/--no-download",
            help="Download missing weights at start-up (else the classical backend starts).",
        ),
    ] = True,
    samples: Annotated[
        Path | None,
        typer.Option("--samples", metavar="DIR", help="Folder of sample images for the page."),
    ] = None,
    folder: Annotated[
        Path | None,
        typer.Option(
            "--folder",
            metavar="DIR",
            help="Label the images of this folder one after another (next/previous on the "
            "page); the COCO file of the folder is written into it when you ask.",
        ),
    ] = None,
    max_upload_mb: Annotated[
        float, typer.Option("--max-upload-mb", help="Largest accepted upload.")
    ] = 50.0,
    max_images: Annotated[
        int, typer.Option("--max-images", help="Images held in memory at once.")
    ] = 8,
    video_model: Annotated[
        str,
        typer.Option(
            "--video-model",
            help="SAM 2 model that tracks videos (the served model when it is a SAM 2 model).",
        ),
    ] = "sam2.1-hiera-tiny",
    video_checkpoint: Annotated[
        Path | None,
        typer.Option("--video-checkpoint", metavar="PATH", help="Weights of --video-model."),
    ] = None,
    max_videos: Annotated[
        int, typer.Option("--max-videos", help="Videos held in memory at once.")
    ] = 2,
    max_video_mb: Annotated[
        float, typer.Option("--max-video-mb", help="Largest accepted video upload.")
    ] = 200.0,
    max_video_frames: Annotated[
        int, typer.Option("--max-video-frames", help="Most frames an accepted video may have.")
    ] = 600,
    max_video_seconds: Annotated[
        float, typer.Option("--max-video-seconds", help="Longest accepted video.")
    ] = 120.0,
) -> None:
    """Serve the web app: upload, hover, click, box, multimask, everything, cut-outs."""
    import logging

    from tijeras.catalog import get_spec
    from tijeras.server.app import create_app
    from tijeras.server.backend import load_configured_backend
    from tijeras.server.settings import ServerSettings

    with _user_errors():
        get_spec(model)
        if get_spec(video_model).family != "sam2":
            _fail(f"--video-model {video_model}: video tracking needs a SAM 2 model")
    _check_device(device)
    for flag, path in (("--samples", samples), ("--folder", folder)):
        if path is not None and not path.is_dir():
            _fail(f"{flag} {path}: not a folder")
    if not 0 <= port <= 65535:
        _fail(f"--port {port}: a port is a number from 0 to 65535")
    if max_images < 1:
        _fail(f"--max-images {max_images}: at least one image must fit")
    if max_videos < 1:
        _fail(f"--max-videos {max_videos}: at least one video must fit")
    settings = ServerSettings(
        model=model,
        checkpoint=None if checkpoint is None else str(checkpoint),
        device=device,
        dtype=dtype.value,
        download=download,
        cache=None if cache is None else str(cache),
        samples=None if samples is None else str(samples),
        folder=None if folder is None else str(folder),
        max_upload_mb=max_upload_mb,
        max_images=max_images,
        video_model=video_model,
        video_checkpoint=None if video_checkpoint is None else str(video_checkpoint),
        max_videos=max_videos,
        max_video_mb=max_video_mb,
        max_video_frames=max_video_frames,
        max_video_seconds=max_video_seconds,
    )
    listener = _listen(host, port)  # before the (slow) model load: a busy port fails now
    try:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
        with _user_errors():
            # Load the model before the server starts, so a bad checkpoint is one `error:`
            # line (inside the server's start-up it would be a traceback).
            backend = load_configured_backend(settings)
        bound = listener.getsockname()[1]
        typer.echo(f"tijeras: serving {backend.name}; open {_url(host, bound)}", err=True)
        run_server(create_app(settings, backend=backend), listener)
    finally:
        listener.close()


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    if ":" in shown:
        shown = "[::1]" if shown == "::" else f"[{shown}]"
    return f"http://{shown}:{port}/"


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, or one ``error:`` line naming what is wrong."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as err:
        _fail(f"--host {host!r}: not an address of this machine ({err.strerror})")
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
    except OSError as err:
        listener.close()
        if err.errno == errno.EADDRINUSE:
            _fail(
                f"port {port} on {host} is already in use (another tijeras or another "
                f"program): stop it, or pass --port with a free port such as {port + 1}"
            )
        if err.errno == errno.EACCES:
            _fail(f"port {port} on {host}: permission denied (ports below 1024 need root)")
        if err.errno == errno.EADDRNOTAVAIL:
            _fail(f"--host {host}: not an address of this machine")
        _fail(f"cannot listen on {host} port {port}: {err.strerror or err}")
    return listener


def run_server(application: Any, listener: socket.socket) -> None:
    """Serve ``application`` with uvicorn on the bound socket until interrupted."""
    import uvicorn

    config = uvicorn.Config(application, log_level="info", ws="auto")
    uvicorn.Server(config).run(sockets=[listener])
