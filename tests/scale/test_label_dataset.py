"""``label_dataset`` in this process (no cluster): outputs, the index, resuming, changed
options, broken images, a model that cannot load; the same masks as ``tijeras everything``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers.scale import (
    FAILING,
    FAST,
    FAST_FLAGS,
    STUB,
    annotations,
    write_broken,
    write_images,
)
from typer.testing import CliRunner

from tijeras.cli.main import app
from tijeras.errors import TijerasError
from tijeras.scale import label_dataset, read_index
from tijeras.scale.index import INDEX_FOLDER

pytest.importorskip("pyarrow", reason="needs the scale extra: pip install 'tijeras[scale]'")


def _run(source: Path | str, out: Path | str, **kwargs):
    kwargs.setdefault("options", FAST)
    return label_dataset(str(source), str(out), model="test-tiny", progress=False, **kwargs)


def _mtimes(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns
        for p in folder.rglob("*.json")
        if "_tijeras" not in p.parts
    }


@pytest.fixture()
def images(tmp_path: Path) -> Path:
    write_images(tmp_path / "in", 3)
    write_images(tmp_path / "in" / "sub", 1)
    write_broken(tmp_path / "in" / "sub" / "broken.jpg")
    return tmp_path / "in"


def test_a_run_labels_every_image_and_records_the_broken_one(images: Path, tmp_path: Path):
    out = tmp_path / "out"
    summary = _run(images, out)
    assert (summary.total, summary.done, summary.skipped, summary.failed) == (5, 4, 0, 1)
    document = json.loads((out / "sub" / "img_000.json").read_text())
    assert set(document) == {"tijeras", "image", "annotations"}
    assert document["image"]["width"] == 96 and document["image"]["height"] == 64
    assert set(document["annotations"][0]) >= {
        "segmentation",
        "bbox",
        "area",
        "predicted_iou",
        "stability_score",
        "point_coords",
        "crop_box",
    }
    index = {r["path"]: r for r in read_index(str(out)).to_pylist()}
    assert len(index) == 5
    broken = index[str(images / "sub" / "broken.jpg")]
    assert broken["status"] == "failed" and "not an image" in broken["error"]
    done = [r for r in index.values() if r["status"] == "done"]
    assert all(
        r["masks"] == len(json.loads((out / r["output"]).read_text())["annotations"]) for r in done
    )
    assert {r["options_hash"] for r in index.values()} == {document["tijeras"]["options_hash"]}
    assert not list((out / "_tijeras" / "tmp").iterdir())


def test_the_masks_are_those_of_tijeras_everything(images: Path, tmp_path: Path) -> None:
    _run(images, tmp_path / "out")
    result = CliRunner().invoke(
        app,
        [
            "everything",
            str(images),
            "--out",
            str(tmp_path / "coco"),
            "--model",
            "test-tiny",
            *FAST_FLAGS,
            "--formats",
            "coco",
        ],
    )
    assert result.exit_code == 0, result.output
    for name in ("img_000", "img_002"):
        ours = json.loads((tmp_path / "out" / f"{name}.json").read_text())["annotations"]
        coco = json.loads((tmp_path / "coco" / f"{name}.json").read_text())["annotations"]
        assert [a["segmentation"] for a in ours] == [a["segmentation"] for a in coco]
        assert [a["bbox"] for a in ours] == [a["bbox"] for a in coco]


def test_a_rerun_skips_what_is_done_and_retries_what_failed(images: Path, tmp_path: Path):
    out = tmp_path / "out"
    _run(images, out)
    before = _mtimes(out)
    summary = _run(images, out)
    assert (summary.done, summary.skipped, summary.failed) == (0, 4, 1)
    assert _mtimes(out) == before
    latest = read_index(str(out)).to_pylist()
    assert sorted(r["status"] for r in latest) == [
        "failed",
        "skipped",
        "skipped",
        "skipped",
        "skipped",
    ]
    assert all(r["masks"] >= 1 for r in latest if r["status"] == "skipped")


def test_missing_outputs_are_done_and_lost_index_rows_come_back(images: Path, tmp_path: Path):
    out = tmp_path / "out"
    _run(images, out)
    first = (out / "img_001.json").read_text()
    (out / "img_001.json").unlink()
    shutil.rmtree(out / INDEX_FOLDER)  # as if the driver died before writing its rows
    summary = _run(images, out)
    assert (summary.done, summary.skipped, summary.failed) == (1, 3, 1)
    assert annotations(out / "img_001.json") == first.split("\n", 1)[1]
    assert len(read_index(str(out))) == 5


def test_changed_options_are_refused_then_relabelled_with_force(images: Path, tmp_path: Path):
    out = tmp_path / "out"
    _run(images, out)
    changed = {**FAST, "points_per_side": 3}
    with pytest.raises(TijerasError, match=r"other options \(.*points_per_side: 4 -> 3.*--force"):
        _run(images, out, options=changed)
    summary = _run(images, out, options=changed, force=True)
    assert (summary.done, summary.skipped) == (4, 0)
    summary = _run(images, out, options=changed)  # the folder's options are the new ones now
    assert (summary.done, summary.skipped) == (0, 4)


def test_an_output_of_other_options_is_redone(images: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _run(images, out)
    stale = _run(images, tmp_path / "other", options={**FAST, "points_per_side": 3})
    assert stale.done == 4
    shutil.copy(tmp_path / "other" / "img_002.json", out / "img_002.json")
    summary = _run(images, out)
    assert (summary.done, summary.skipped) == (1, 3)


def test_two_images_given_one_output_name_are_not_mixed(tmp_path: Path) -> None:
    write_images(tmp_path / "a", 1)
    write_images(tmp_path / "b", 2)
    listing = tmp_path / "list.txt"
    listing.write_text("a/img_000.png\tsame\n")
    _run(listing, tmp_path / "out", labeller=STUB)
    listing.write_text("a/img_000.png\tsame\nb/img_001.png\tsame\n")
    summary = _run(listing, tmp_path / "out", labeller=STUB)
    assert (summary.skipped, summary.failed) == (1, 1)
    failed = [r for r in read_index(str(tmp_path / "out")).to_pylist() if r["status"] == "failed"]
    assert "already holds the labels of" in failed[0]["error"]


def test_a_model_that_cannot_load_is_one_error_before_any_work(images: Path, tmp_path: Path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(TijerasError, match="bad.pth"):
        _run(images, tmp_path / "out", checkpoint=str(bad))
    assert not (tmp_path / "out").exists()
    with pytest.raises(TijerasError, match="no such file"):
        _run(images, tmp_path / "out", checkpoint=str(tmp_path / "missing.pth"))
    with pytest.raises(TijerasError, match="labeller 'nowhere:nothing' cannot be imported"):
        _run(images, tmp_path / "out", labeller="nowhere:nothing")


def test_a_uri_source_and_output_give_the_same_labels(images: Path, tmp_path: Path) -> None:
    _run(images, tmp_path / "out")
    summary = _run(f"file://{images}", f"file://{tmp_path}/uri")
    assert (summary.done, summary.failed) == (4, 1)
    for path in (tmp_path / "out").rglob("img_*.json"):
        twin = tmp_path / "uri" / path.relative_to(tmp_path / "out")
        assert annotations(twin) == annotations(path)
    assert len(read_index(f"file://{tmp_path}/uri")) == 5


def test_an_image_the_labeller_fails_on_is_recorded_and_the_run_goes_on(tmp_path: Path):
    write_images(tmp_path / "in", 2)
    write_images(tmp_path / "in" / "odd", 1, width=50)
    summary = _run(tmp_path / "in", tmp_path / "out", labeller=FAILING)
    assert (summary.done, summary.failed) == (2, 1)
    (failed,) = [r for r in read_index(str(tmp_path / "out")).to_pylist() if r["error"]]
    assert failed["error"] == "error while labelling (RuntimeError): shape mismatch in the decoder"


def test_an_output_folder_inside_the_source_or_a_file_is_refused(images: Path, tmp_path: Path):
    with pytest.raises(TijerasError, match="must not be inside the input folder"):
        _run(images, images / "labels")
    (tmp_path / "file").write_text("x")
    with pytest.raises(TijerasError, match="exists and is not a folder"):
        _run(images, tmp_path / "file")


def test_text_phrases_label_by_concept_as_tijeras_everything_text(tmp_path: Path) -> None:
    from tijeras.cli.scale import CONCEPT_LABELLER

    write_images(tmp_path / "in", 2)
    summary = label_dataset(
        str(tmp_path / "in"),
        str(tmp_path / "out"),
        model="sam3-test-tiny",
        labeller=CONCEPT_LABELLER,
        phrases=["car", "person"],
        extra={"text_threshold": 0.1},
        progress=False,
    )
    assert (summary.done, summary.failed) == (2, 0)
    result = CliRunner().invoke(
        app,
        [
            "everything",
            str(tmp_path / "in"),
            "--out",
            str(tmp_path / "coco"),
            "--text",
            "car",
            "--text",
            "person",
            "--model",
            "sam3-test-tiny",
            "--text-threshold",
            "0.1",
            "--formats",
            "coco",
        ],
    )
    assert result.exit_code == 0, result.output
    ours = json.loads((tmp_path / "out" / "img_000.json").read_text())["annotations"]
    coco = json.loads((tmp_path / "coco" / "img_000.json").read_text())["annotations"]
    assert ours and [a["segmentation"] for a in ours] == [a["segmentation"] for a in coco]
    assert [a["category"] for a in ours] == [["car", "person"][a["category_id"] - 1] for a in coco]
