"""Labelling on a real Ray cluster of this machine (a head and a worker node on 127.0.0.1,
started and stopped here): the same outputs as a run in this process, resuming, broken images,
a model that cannot load, and (slow) a worker killed mid-run and a whole run killed and
restarted.

Each run's driver is a process of its own (as a user's would be), with the cluster's token in
its environment; this process only compares the outputs with a run done here without Ray.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.ray_cluster import LocalRayCluster, ray_env
from helpers.scale import FAST, FAST_FLAGS, RECORDING, annotations, write_broken, write_images

from tijeras.scale import label_dataset, read_index

if importlib.util.find_spec("ray") is None:
    pytest.skip("Ray is not installed (pip install 'tijeras[scale]')", allow_module_level=True)


@pytest.fixture(scope="module")
def control(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("control")


@pytest.fixture(scope="module")
def cluster(control: Path):
    with LocalRayCluster(
        worker_nodes=1, cpus_per_node=2, env={"TIJERAS_TEST_CONTROL": str(control)}
    ) as running:
        yield running


DRIVER = """
import dataclasses, json, sys
from helpers.scale import FAST, RECORDING
from tijeras.scale import Cluster, label_dataset
per_call, shard = (int(sys.argv[4]), int(sys.argv[5])) if len(sys.argv) > 4 else (1, 20000)
summary = label_dataset(sys.argv[1], sys.argv[2], model="test-tiny", options=FAST,
                        labeller=RECORDING, progress=False,
                        cluster=Cluster(sys.argv[3], workers=2, images_per_call=per_call,
                                        shard_size=shard))
print("SUMMARY " + json.dumps(dataclasses.asdict(summary)))
"""


def _driver(
    cluster: LocalRayCluster, source: Path, out: Path, per_call: int = 1, shard: int = 20000
) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            DRIVER,
            str(source),
            str(out),
            cluster.address,
            str(per_call),
            str(shard),
        ],
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _summary(driver: subprocess.Popen, timeout: float = 600) -> dict:
    stdout, stderr = driver.communicate(timeout=timeout)
    assert driver.returncode == 0, stderr[-3000:]
    (line,) = [line for line in stdout.splitlines() if line.startswith("SUMMARY ")]
    return json.loads(line[len("SUMMARY ") :])


def _label(source: Path, out: Path, cluster: LocalRayCluster | None = None, **driver: int) -> dict:
    if cluster is not None:
        return _summary(_driver(cluster, source, out, **driver))
    summary = label_dataset(
        str(source),
        str(out),
        model="test-tiny",
        options=FAST,
        labeller=RECORDING,
        progress=False,
    )
    return {"done": summary.done, "masks": summary.masks}


def _outputs(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): annotations(p)
        for p in sorted(out.rglob("*.json"))
        if "_tijeras" not in p.parts
    }


def _run_rows(out: Path, run_id: str) -> list[dict]:
    return [r for r in read_index(str(out), latest=False).to_pylist() if r["run_id"] == run_id]


def test_a_cluster_run_matches_this_process(cluster, tmp_path: Path) -> None:
    write_images(tmp_path / "in", 2)
    write_images(tmp_path / "in" / "sub", 1)
    write_broken(tmp_path / "in" / "sub" / "broken.jpg")
    reference = _label(tmp_path / "in", tmp_path / "ref")
    # two images per worker call: the broken one beside a good one
    summary = _label(tmp_path / "in", tmp_path / "out", cluster, per_call=2)
    assert (summary["done"], summary["failed"], summary["skipped"]) == (3, 1, 0)
    assert _outputs(tmp_path / "out") == _outputs(tmp_path / "ref")
    assert summary["masks"] == reference["masks"]
    rows = _run_rows(tmp_path / "out", summary["run_id"])
    assert len(rows) == len({r["path"] for r in rows}) == 4
    broken = [r for r in rows if r["status"] == "failed"]
    assert len(broken) == 1 and "not an image file" in broken[0]["error"]
    assert not list((tmp_path / "out" / "_tijeras" / "tmp").iterdir())


@pytest.mark.slow
def test_a_cluster_rerun_in_shards_skips_what_is_done(cluster, tmp_path: Path) -> None:
    write_images(tmp_path / "in", 2)
    write_images(tmp_path / "in" / "b", 2)
    write_broken(tmp_path / "in" / "b" / "broken.jpg")
    _label(tmp_path / "in", tmp_path / "ref")
    first = _label(tmp_path / "in", tmp_path / "out", cluster, shard=2)  # two executions
    assert (first["done"], first["failed"]) == (4, 1)
    assert _outputs(tmp_path / "out") == _outputs(tmp_path / "ref")
    before = {
        p: p.stat().st_mtime_ns
        for p in (tmp_path / "out").rglob("*.json")
        if "_tijeras" not in p.parts
    }
    again = _label(tmp_path / "in", tmp_path / "out", cluster, shard=2)
    assert (again["done"], again["skipped"], again["failed"]) == (0, 4, 1)
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_a_model_that_cannot_load_is_one_error_before_any_work(cluster, tmp_path: Path):
    write_images(tmp_path / "in", 2)
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tijeras",
            "everything",
            str(tmp_path / "in"),
            "--out",
            str(tmp_path / "out"),
            "--model",
            "test-tiny",
            *FAST_FLAGS,
            "--checkpoint",
            str(bad),
            "--ray",
            cluster.address,
        ],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "model test-tiny cannot be loaded on a worker" in errors[0]
    assert "bad.pth" in errors[0]
    assert not (tmp_path / "out").exists()


def _wait(condition, timeout: float = 180.0, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(every)


def _count(out: Path) -> int:
    return sum(1 for p in out.glob("*.json"))


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_nothing(cluster, control: Path, tmp_path: Path) -> None:
    write_images(tmp_path / "in", 12)
    _label(tmp_path / "in", tmp_path / "ref")
    (control / "delay").write_text("1.0")
    try:
        driver = _driver(cluster, tmp_path / "in", tmp_path / "out")
        _wait(lambda: _count(tmp_path / "out") >= 2)
        workers = cluster.worker_pids("MapWorker")
        assert len(workers) == 2, workers
        os.kill(workers[0], signal.SIGKILL)
        killed_at = _count(tmp_path / "out")
        summary = _summary(driver)
    finally:
        (control / "delay").unlink()
    assert killed_at < 12
    assert (summary["done"], summary["failed"]) == (12, 0)
    assert _outputs(tmp_path / "out") == _outputs(tmp_path / "ref")
    rows = _run_rows(tmp_path / "out", summary["run_id"])
    assert sorted(r["path"] for r in rows) == sorted(str(p) for p in (tmp_path / "in").iterdir())
    assert not list((tmp_path / "out" / "_tijeras" / "tmp").iterdir())


@pytest.mark.slow
def test_a_run_killed_and_restarted_does_only_the_missing_images(
    cluster, control: Path, tmp_path: Path
) -> None:
    write_images(tmp_path / "in", 12)
    _label(tmp_path / "in", tmp_path / "ref")
    (control / "delay").write_text("1.0")
    try:
        driver = _driver(cluster, tmp_path / "in", tmp_path / "out")
        _wait(lambda: _count(tmp_path / "out") >= 3)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        _wait(lambda: not cluster.worker_pids("MapWorker"), timeout=60)
    finally:
        (control / "delay").unlink()
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("*.json")}
    assert 3 <= len(before) < 12
    summary = _label(tmp_path / "in", tmp_path / "out", cluster)
    assert (summary["done"], summary["skipped"]) == (12 - len(before), len(before))
    assert {n: (tmp_path / "out" / n).stat().st_mtime_ns for n in before} == before
    assert _outputs(tmp_path / "out") == _outputs(tmp_path / "ref")
    assert len(read_index(str(tmp_path / "out"))) == 12
    assert json.loads((tmp_path / "out" / "_tijeras" / "run.json").read_text())["options_hash"]


@pytest.mark.slow
def test_ray_local_starts_a_cluster_for_the_run(tmp_path: Path) -> None:
    write_images(tmp_path / "in", 2)
    env = ray_env()  # a token of its own: nothing in ~/.ray
    result = subprocess.run(  # relative paths: the workers run in folders of their own
        [
            sys.executable,
            "-m",
            "tijeras",
            "everything",
            "in",
            "--out",
            "out",
            "--model",
            "test-tiny",
            *FAST_FLAGS,
            "--ray",
            "local",
            "--workers",
            "2",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "summary: 2 done, 0 skipped (already done), 0 failed" in result.stdout
    assert len(read_index(str(tmp_path / "out"))) == 2


@pytest.mark.slow
def test_a_bug_in_the_labeller_stops_the_run_with_one_error(cluster, tmp_path: Path) -> None:
    write_images(tmp_path / "in", 2)
    script = DRIVER.replace("labeller=RECORDING", "labeller=BUGGY").replace(
        "import FAST, RECORDING", "import BUGGY, FAST"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(tmp_path / "in"),
            str(tmp_path / "out"),
            cluster.address,
        ],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("tijeras.errors.TijerasError: the run stopped:"), last
    assert "no such head" in last and "run the same command again" in last


@pytest.mark.slow
def test_text_phrases_on_the_cluster(cluster, tmp_path: Path) -> None:
    write_images(tmp_path / "in", 2)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tijeras",
            "everything",
            str(tmp_path / "in"),
            "--out",
            str(tmp_path / "out"),
            "--text",
            "car",
            "--text",
            "person",
            "--model",
            "sam3-test-tiny",
            "--text-threshold",
            "0.1",
            "--ray",
            cluster.address,
        ],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "summary: 2 done" in result.stdout
    document = json.loads((tmp_path / "out" / "img_000.json").read_text())
    assert {a["category"] for a in document["annotations"]} <= {"car", "person"}
    assert json.loads((tmp_path / "out" / "_tijeras" / "run.json").read_text())["job"][
        "phrases"
    ] == ["car", "person"]
