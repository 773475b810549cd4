"""The pieces of ``tijeras.scale`` without a cluster: options hash, SA-1B files and their first
line, atomic writes, sources and output names, the index."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers.scale import FAST, write_broken, write_images

from tijeras.errors import TijerasError
from tijeras.scale.index import INDEX_FOLDER, read_index, row, write_part
from tijeras.scale.pipeline import make_job
from tijeras.scale.sa1b import OutputHeader, image_id, read_header, sa1b_document
from tijeras.scale.sources import group_entries, list_entries, output_stems, plan_source
from tijeras.scale.store import Location

pytest.importorskip("pyarrow", reason="needs the scale extra: pip install 'tijeras[scale]'")


def test_options_hash_is_stable_and_covers_what_changes_the_labels() -> None:
    base = make_job("test-tiny", FAST)
    assert base.options_hash() == make_job("test-tiny", dict(FAST)).options_hash()
    assert len(base.options_hash()) == 16
    changed = [
        make_job("test-tiny", {**FAST, "pred_iou_thresh": 0.5}),
        make_job("test-tiny-mobile", FAST),
        make_job("test-tiny", FAST, dtype="bfloat16"),
        make_job("test-tiny", FAST, tile=128),
        make_job("test-tiny", FAST, labeller="helpers.scale:stub_labeller"),
        make_job("test-tiny", FAST, extra={"text_threshold": 0.3}),
    ]
    assert len({job.options_hash() for job in changed} | {base.options_hash()}) == 7
    # where it runs is not part of it: a run resumed on other machines continues the labels
    assert make_job("test-tiny", FAST, cache="/elsewhere").options_hash() == base.options_hash()


def test_a_job_names_a_bad_option() -> None:
    with pytest.raises(ValueError, match="pred_iou_thresh must be at most 1"):
        make_job("test-tiny", {"pred_iou_thresh": 2.0})
    with pytest.raises(TijerasError, match="no-such-model"):
        make_job("no-such-model")


def test_sa1b_file_reads_as_json_and_its_header_from_the_first_bytes() -> None:
    header = OutputHeader("abcd", "test-tiny", "/data/a.jpg", 2, 1.5, "run1", 96, 64)
    records = [
        {
            "segmentation": {"size": [64, 96], "counts": "abc"},
            "area": np.int64(10),
            "bbox": [1.0, 2.0, 3.0, 4.0],
            "predicted_iou": np.float32(0.5),
            "stability_score": 0.9,
            "point_coords": [[1.0, 2.0]],
            "crop_box": [0, 0, 96, 64],
            "category": "car",
        }
    ] * 2
    data = sa1b_document(records, header, "a", "a.jpg")
    document = json.loads(data)
    assert document["image"] == {
        "image_id": image_id("a"),
        "width": 96,
        "height": 64,
        "file_name": "a.jpg",
    }
    assert [a["id"] for a in document["annotations"]] == [1, 2]
    assert document["annotations"][0]["area"] == 10
    assert document["annotations"][0]["category"] == "car"
    assert read_header(data[:300]) == header
    assert read_header(b'{"images": []}') is None
    assert read_header(data[:20]) is None


def test_sa1b_file_refuses_masks_that_are_not_coco_rle() -> None:
    header = OutputHeader("abcd", "m", "a.jpg", 1, 0.0, "r", 4, 4)
    with pytest.raises(TypeError, match="record 0: segmentation must be a COCO RLE"):
        sa1b_document([{"segmentation": np.zeros((4, 4), bool)}], header, "a", "a.jpg")


def test_a_writer_killed_mid_write_leaves_no_file_under_the_final_name(tmp_path: Path) -> None:
    target = tmp_path / "out" / "big.json"
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from tijeras.scale.store import Location\n"
        "loc = Location(sys.argv[1])\n"
        "real = Path.open\n"
        "def slow_open(self, *a, **k):\n"
        "    stream = real(self, *a, **k)\n"
        "    write = stream.write\n"
        "    def w(data):\n"
        "        n = write(data[:10]); stream.flush(); print('writing', flush=True)\n"
        "        time.sleep(60); return n\n"
        "    stream.write = w\n"
        "    return stream\n"
        "Path.open = slow_open\n"
        "loc.write_atomic('big.json', b'x' * 1000, temp_folder='_tijeras/tmp')\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "out")], stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == b"writing"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not target.exists()
    leftovers = list((tmp_path / "out" / "_tijeras" / "tmp").iterdir())
    assert len(leftovers) == 1 and leftovers[0].stat().st_size == 10
    Location(str(tmp_path / "out")).write_atomic("big.json", b"y" * 5, "_tijeras/tmp")
    assert target.read_bytes() == b"yyyyy"


def test_output_stems_tell_apart_images_that_share_a_stem() -> None:
    assert output_stems(["a.jpg", "a.png", "b.jpg"]) == ["a_jpg", "a_png", "b"]


def test_a_folder_is_counted_per_subfolder_and_listed_with_mirrored_names(tmp_path: Path) -> None:
    write_images(tmp_path / "in", 2)
    write_images(tmp_path / "in" / "deep" / "er", 1)
    write_broken(tmp_path / "in" / "img_000.jpg")
    (tmp_path / "in" / ".hidden").mkdir()
    write_images(tmp_path / "in" / ".hidden", 1)
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    source = plan_source(str(tmp_path / "in"))
    assert (source.kind, source.total) == ("folder", 4)
    assert [(g.folder, g.count) for g in source.groups] == [("", 3), ("deep/er", 1)]
    names = [e.name for g in source.groups for e in group_entries(source.root, g.folder)]
    assert names == ["img_000_jpg", "img_000_png", "img_001", "deep/er/img_000"]


def test_a_list_file_names_images_relative_to_itself_or_by_tab(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    listing = tmp_path / "data" / "images.txt"
    listing.write_text("# a comment\nsub/a.jpg\n\n/abs/b.png\ts3_b\ns3://bucket/x/c.jpg\n")
    source = plan_source(str(listing))
    assert (source.kind, source.total) == ("list", 3)
    lines = ["sub/a.jpg", "/abs/b.png\ts3_b", "s3://bucket/x/c.jpg"]
    entries = list_entries(str(listing), lines)
    assert [e.name for e in entries] == ["sub/a", "s3_b", "bucket/x/c"]
    assert entries[0].path == str(tmp_path / "data" / "sub" / "a.jpg")
    assert entries[2].path == "s3://bucket/x/c.jpg"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "input not found"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "no images"),
        (lambda p: (p / "a.csv").write_text("x") and p / "a.csv", "not an image"),
        (lambda p: (p / "l.txt").write_text("# nothing\n") and p / "l.txt", "names no image"),
    ],
)
def test_a_bad_source_is_one_clear_error(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(TijerasError, match=message):
        plan_source(str(make(tmp_path)))


def test_the_index_keeps_the_newest_row_of_each_image(tmp_path: Path) -> None:
    out = Location(str(tmp_path))
    common = {"model": "m", "options_hash": "h"}
    write_part(out, "r1-0", [row("a.jpg", "a.json", "failed", run_id="r1", error="x", **common)])
    time.sleep(0.01)
    write_part(
        out,
        "r2-0",
        [
            row("a.jpg", "a.json", "done", run_id="r2", masks=3, **common),
            row("b.jpg", "b.json", "done", run_id="r2", masks=1, **common),
        ],
    )
    (tmp_path / INDEX_FOLDER / ".r3-0.123.tmp.parquet").write_bytes(b"half")
    latest = read_index(str(tmp_path)).to_pylist()
    assert [(r["path"], r["status"], r["masks"]) for r in latest] == [
        ("a.jpg", "done", 3),
        ("b.jpg", "done", 1),
    ]
    assert read_index(str(tmp_path), latest=False).num_rows == 3
    with pytest.raises(TijerasError, match="no index"):
        read_index(str(tmp_path / "nothing"))


def test_a_uri_location_reads_and_writes_through_fsspec(tmp_path: Path) -> None:
    out = Location(f"file://{tmp_path}/out")
    out.write_atomic("a/b.json", b"{}")
    assert (tmp_path / "out" / "a" / "b.json").read_bytes() == b"{}"
    assert out.read_head("a/b.json", 1) == b"{"
    assert out.read_head("a/missing.json", 1) is None
    assert out.list_files("a") == ["b.json"]
    assert [f for f in os.listdir(tmp_path / "out" / "a")] == ["b.json"]
