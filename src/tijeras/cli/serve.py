"""``tijeras serve``: the web app on this machine (see :mod:`tijeras.server`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tijeras.cli.main import (
    CacheOption,
    CheckpointOption,
    DeviceOption,
    DType,
    DTypeOption,
    _check_device,
    _user_errors,
    app,
)
from tijeras.defaults import DEFAULT_MODEL


@app.command()
def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to bind (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model name or alias (see `tijeras models`).")
    ] = DEFAULT_MODEL,
    checkpoint: CheckpointOption = None,
    device: DeviceOption = "cpu",
    dtype: DTypeOption = DType.float32,
    cache: CacheOption = None,
    download: Annotated[
        bool,
        typer.Option(
            "--download/--no-download",
            help="Download missing weights at start-up (else the classical backend starts).",
        ),
    ] = True,
    samples: Annotated[
        Optional[Path],
        typer.Option("--samples", metavar="DIR", help="Folder of sample images for the page."),
    ] = None,
    max_upload_mb: Annotated[
        float, typer.Option("--max-upload-mb", help="Largest accepted upload.")
    ] = 50.0,
    max_images: Annotated[
        int, typer.Option("--max-images", help="Images held in memory at once.")
    ] = 8,
) -> None:
    """Serve the web app: upload, hover, click, box, multimask, everything, cut-outs."""
    import logging

    import uvicorn

    from tijeras.model.registry import get_spec
    from tijeras.server.app import create_app
    from tijeras.server.backend import load_configured_backend
    from tijeras.server.settings import ServerSettings

    with _user_errors():
        get_spec(model)
    _check_device(device)
    if samples is not None and not samples.is_dir():
        typer.echo(f"error: --samples {samples}: not a folder", err=True)
        raise typer.Exit(2)
    settings = ServerSettings(
        model=model,
        checkpoint=None if checkpoint is None else str(checkpoint),
        device=device,
        dtype=dtype.value,
        download=download,
        cache=None if cache is None else str(cache),
        samples=None if samples is None else str(samples),
        max_upload_mb=max_upload_mb,
        max_images=max_images,
    )
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    with _user_errors():
        # Load the model before the server starts, so a bad checkpoint is one `error:` line
        # (inside the server's start-up it would be a traceback).
        backend = load_configured_backend(settings)
    typer.echo(f"tijeras: serving {backend.name}; open http://{host}:{port}/", err=True)
    application = create_app(settings, backend=backend)
    uvicorn.run(application, host=host, port=port, log_level="info", ws="auto")
