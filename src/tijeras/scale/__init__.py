"""Labelling datasets: everything mode (or a text-prompted labeller) over millions of images,
on a Ray cluster or in this process, resumable, written as SA-1B JSON plus a Parquet index.

::

    from tijeras.scale import Cluster, label_dataset, read_index

    summary = label_dataset("photos/", "labels/", model="sam-vit-b", device="cuda",
                            options={"points_per_side": 32},
                            cluster=Cluster("auto", workers=8, gpus_per_worker=1))
    index = read_index("labels/")          # pyarrow Table, one row per image

Ray is an optional dependency (``pip install 'tijeras[scale]'``), imported only by a run on a
cluster. See ``docs/scaling.md``.
"""

from __future__ import annotations

from tijeras.scale.index import read_index
from tijeras.scale.job import Cluster, LabelJob
from tijeras.scale.pipeline import RunSummary, label_dataset, make_job

__all__ = ["Cluster", "LabelJob", "RunSummary", "label_dataset", "make_job", "read_index"]
