"""Labelling on a Ray cluster from the command line: ``tijeras everything ... --ray ADDRESS``
(the flags below, read by :mod:`tijeras.cli.everything`) and ``tijeras scale-report LABELS``.

With ``--ray`` the images of the source (a folder, recursive, a ``.txt`` list or one image;
local or a URI) are labelled by :func:`tijeras.scale.label_dataset`: SA-1B JSON per image and
a Parquet index under ``OUT/_tijeras/index``, resumable. Ray is optional
(``pip install 'tijeras[scale]'``); without it the command says so.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tijeras.cli.common import _fail, _user_errors, app

if TYPE_CHECKING:
    from tijeras.automatic.options import EverythingOptions

DEFAULT_FORMATS = "coco,overlay"
"""``tijeras everything``'s default ``--formats`` (a --ray run writes its own layout)."""

RayOption = Annotated[
    str | None,
    typer.Option(
        "--ray",
        metavar="ADDRESS",
        help="Label on a Ray cluster: auto (the cluster this machine is part of), local (one "
        "started on this machine for the run) or HOST:PORT / ray://HOST:PORT. Writes SA-1B JSON "
        "per image and a Parquet index (OUT/_tijeras/index); resumable. Needs pip install 'tijeras\\[scale]'.",
        show_default=False,
    ),
]
WorkersOption = Annotated[
    int,
    typer.Option(
        "--workers", metavar="N", min=1, help="With --ray: model workers (one model each)."
    ),
]
GpusPerWorkerOption = Annotated[
    float,
    typer.Option(
        "--gpus-per-worker",
        metavar="G",
        min=0.0,
        help="With --ray: GPUs per worker (0.5 shares one).",
    ),
]
CpusPerWorkerOption = Annotated[
    int,
    typer.Option(
        "--cpus-per-worker", metavar="N", min=1, help="With --ray: CPUs (torch threads) per worker."
    ),
]


@dataclass(frozen=True)
class RayRequest:
    """The ``--ray`` flags of ``tijeras everything``."""

    address: str
    workers: int = 1
    gpus_per_worker: float = 0.0
    cpus_per_worker: int = 1

    def run(
        self,
        source: str,
        out: Path,
        formats_text: str,
        model_name: str,
        options: EverythingOptions,
        tile: int | None,
        overlap: int,
        force: bool,
        checkpoint: Path | None,
        device: str,
        dtype: str,
        cache: Path | None,
        concept: tuple[tuple[str, ...], float] | None = None,
    ) -> int:
        """Label ``source`` on the cluster; the exit code (0 when any image is labelled or all
        were done, 1 when every image failed). A usage error is one ``error:`` line, code 2."""
        from tijeras.scale.job import EVERYTHING_LABELLER, Cluster
        from tijeras.scale.pipeline import label_dataset, make_job
        from tijeras.scale.ray_run import import_ray

        if formats_text.replace(" ", "") != DEFAULT_FORMATS:
            _fail(
                "--formats does not apply to --ray: a --ray run writes one SA-1B JSON per image "
                "and a Parquet index"
            )
        _check_devices(device, self.gpus_per_worker)
        phrases: tuple[str, ...] = ()
        extra: dict[str, Any] = {}
        labeller = EVERYTHING_LABELLER
        if concept is not None:
            from tijeras.cli.text import check_phrases

            phrases = tuple(check_phrases(concept[0], model_name))
            extra = {"text_threshold": concept[1]}
            labeller = CONCEPT_LABELLER
        with _user_errors():
            import_ray()
            job = make_job(
                model_name,
                options,
                checkpoint=None if checkpoint is None else str(checkpoint),
                device=device,
                dtype=dtype,
                cache=None if cache is None else str(cache),
                tile=tile,
                tile_overlap=overlap if tile is not None else None,
                phrases=phrases,
                labeller=labeller,
                extra=extra,
            )
            cluster = Cluster(
                self.address, self.workers, self.gpus_per_worker, self.cpus_per_worker
            )
            try:
                summary = label_dataset(
                    source, str(out), job, cluster=cluster, force=force, progress=True
                )
            except KeyboardInterrupt:
                typer.echo("interrupted: run the same command again to resume", err=True)
                raise typer.Exit(130) from None
        typer.echo(
            f"summary: {summary.done} done, {summary.skipped} skipped (already done), "
            f"{summary.failed} failed, {summary.masks} masks in {summary.seconds:.1f} s; "
            f"report: tijeras scale-report {out}"
        )
        return 1 if summary.failed == summary.total else 0


def ray_request(
    address: str | None, workers: int, gpus_per_worker: float, cpus_per_worker: int
) -> RayRequest | None:
    """The request of the ``--ray`` flags, or None without ``--ray`` (then the other flags
    must keep their defaults: they mean nothing on one machine)."""
    if address is None:
        given = [
            flag
            for flag, value, default in (
                ("--workers", workers, 1),
                ("--gpus-per-worker", gpus_per_worker, 0.0),
                ("--cpus-per-worker", cpus_per_worker, 1),
            )
            if value != default
        ]
        if given:
            _fail(f"{given[0]} needs --ray (auto, local or a cluster address)")
        return None
    if not address.strip():
        _fail("--ray needs auto, local or a cluster address (HOST:PORT, ray://HOST:PORT)")
    return RayRequest(address.strip(), workers, gpus_per_worker, cpus_per_worker)


CONCEPT_LABELLER = "tijeras.cli.scale:concept_labeller"


def concept_labeller(job: Any) -> Any:
    """The labeller of ``--text`` runs: every instance of each of ``job.phrases`` (SAM 3), one
    category per phrase (``category``, ``category_id`` in each record)."""
    from tijeras.cli.text import ConceptLabeller
    from tijeras.scale.labelling import build_model

    threshold = float(dict(job.extra).get("text_threshold", 0.5))
    return ConceptLabeller(build_model(job), job.phrases, threshold).generate


def _check_devices(device: str, gpus_per_worker: float) -> None:
    on_gpu = device.startswith("cuda")
    if gpus_per_worker > 0 and not on_gpu:
        _fail(f"--gpus-per-worker {gpus_per_worker:g} with --device {device}: pass --device cuda")
    if on_gpu and gpus_per_worker <= 0:
        _fail(
            f"--device {device} with --ray needs --gpus-per-worker (Ray gives a worker a GPU "
            "only when it asks for one)"
        )


@app.command("scale-report")
def scale_report(
    labels: Annotated[
        str,
        typer.Argument(
            metavar="LABELS",
            help="Output folder of a --ray run (local or a URI).",
            show_default=False,
        ),
    ],
    png: Annotated[
        Path | None,
        typer.Option(
            "--png",
            metavar="PATH",
            help="Masks-per-image histogram (default LABELS/_tijeras/masks_per_image.png, or "
            "./masks_per_image.png for a URI).",
            show_default=False,
        ),
    ] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="Failure reasons listed.")] = 10,
) -> None:
    """Summarise a labelling run's index: images done, failed with reasons, masks per image."""
    from tijeras.scale.store import is_uri

    with _user_errors():
        from tijeras.scale.index import read_index
        from tijeras.scale.report import masks_histogram, summarise

        table = read_index(labels)
        report = summarise(table)
        for line in report.lines(top):
            typer.echo(line)
        target = png or (
            Path("masks_per_image.png")
            if is_uri(labels)
            else Path(labels) / "_tijeras" / "masks_per_image.png"
        )
        masks_histogram(table, target)
    typer.echo(f"histogram: {target}")
    sys.stdout.flush()
