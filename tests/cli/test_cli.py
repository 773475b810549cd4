"""The command line: segment / download / models / doctor, user errors, and the jemalloc re-exec.

Most tests drive the Typer ``app`` in-process with ``CliRunner`` (no re-exec happens there); a few
run ``python -m tijeras`` in a subprocess to cover :func:`tijeras.cli.main.main`.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import importlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from typer.testing import CliRunner

from tijeras.catalog import REGISTRY, build_model
from tijeras.cli.main import app
from tijeras.hub.registry import CheckpointFile, ModelSpec
from tijeras.models.sam.config import SAM_TEST_TINY

cli = importlib.import_module("tijeras.cli.allocator")  # the module (monkeypatched below)

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"


@pytest.fixture(scope="session")
def truck(truck_path: Path) -> Path:
    return truck_path


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture()
def small_image(tmp_path: Path) -> Path:
    """A 96 x 64 RGB image: a bright square on a dark gradient."""
    y, x = np.mgrid[0:64, 0:96]
    rgb = np.stack([x * 2, y * 3, (x + y)], axis=-1).astype(np.uint8)
    rgb[16:48, 30:70] = (250, 240, 30)
    path = tmp_path / "small.png"
    Image.fromarray(rgb).save(path)
    return path


def run(runner: CliRunner, *args: str):
    return runner.invoke(app, [str(a) for a in args])


def assert_user_error(result, *fragments: str) -> str:
    """Exit code 2, exactly one ``error:`` line on stderr, no traceback; returns that line."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def mask_pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.mode == "L", img.mode
        return np.asarray(img)


# --------------------------------------------------------------------------- segment


def test_segment_truck_writes_mask_cutout_overlay(runner, truck, tmp_path):
    out, sticker, over = tmp_path / "mask.png", tmp_path / "sticker.png", tmp_path / "over.png"
    result = run(
        runner,
        "segment",
        truck,
        "--point",
        "500,375",
        "--model",
        "test-tiny",
        "--out",
        out,
        "--cutout",
        sticker,
        "--overlay",
        over,
    )
    assert result.exit_code == 0, result.output
    with Image.open(truck) as img:
        width, height = img.size

    mask = mask_pixels(out)
    assert mask.shape == (height, width)
    assert set(np.unique(mask)) <= {0, 255}
    assert (mask == 255).any()

    ys, xs = np.nonzero(mask)
    bbox = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    with Image.open(sticker) as img:
        assert img.mode == "RGBA"
        rgba = np.asarray(img)
    assert rgba.shape[:2] == (bbox[3] - bbox[1], bbox[2] - bbox[0])
    cropped = mask[bbox[1] : bbox[3], bbox[0] : bbox[2]]
    assert (rgba[..., 3][cropped == 0] == 0).all()
    assert (rgba[..., 3][cropped == 255] == 255).all()

    with Image.open(over) as img:
        assert img.size == (width, height)

    stdout = result.stdout
    assert "score" in stdout and "area" in stdout and "bbox" in stdout
    assert f"bbox {bbox[0]},{bbox[1]},{bbox[2]},{bbox[3]}" in stdout
    assert sum(line.startswith("wrote ") for line in stdout.splitlines()) == 3


def test_segment_is_deterministic_with_random_weights(runner, small_image, tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    for path in (a, b):
        result = run(runner, "segment", small_image, "-p", "50,30", "-m", "test-tiny", "-o", path)
        assert result.exit_code == 0, result.output
    assert np.array_equal(mask_pixels(a), mask_pixels(b))


def test_segment_multimask_writes_every_candidate(runner, small_image, tmp_path):
    result = run(
        runner,
        "segment",
        small_image,
        "--point",
        "50,30",
        "--neg-point",
        "5,5",
        "--model",
        "test-tiny",
        "--multimask",
        "--out",
        tmp_path / "mask.png",
        "--overlay",
        tmp_path / "over.png",
    )
    assert result.exit_code == 0, result.output
    for i in range(3):
        assert mask_pixels(tmp_path / f"mask_{i}.png").shape == (64, 96)
        assert (tmp_path / f"over_{i}.png").is_file()
    assert not (tmp_path / "mask.png").exists()
    scores = [line for line in result.stdout.splitlines() if line.startswith("mask ")]
    assert len(scores) == 3 and all("score" in line for line in scores)


def test_segment_box_without_outputs_prints_summary(runner, small_image, tmp_path):
    result = run(runner, "segment", small_image, "--box", "20,10,80,55", "--model", "test-tiny")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and "score" in lines[0] and "area" in lines[0] and "bbox" in lines[0]
    assert list(tmp_path.glob("*.png")) == [small_image]


def test_segment_with_checkpoint_file(runner, small_image, tmp_path):
    torch.manual_seed(123)
    ckpt = tmp_path / "tiny.pth"
    torch.save(build_model("test-tiny").state_dict(), ckpt)
    result = run(
        runner,
        "segment",
        small_image,
        "--point",
        "50,30",
        "--box",
        "20,10,80,55",
        "--model",
        "test-tiny",
        "--checkpoint",
        ckpt,
        "--dtype",
        "bfloat16",
        "--out",
        tmp_path / "m.png",
    )
    assert result.exit_code == 0, result.output
    assert "random weights" not in result.stderr
    assert mask_pixels(tmp_path / "m.png").shape == (64, 96)


# --------------------------------------------------------------------------- user errors


def test_error_missing_image(runner, tmp_path):
    result = run(runner, "segment", tmp_path / "nope.jpg", "--point", "1,1", "-m", "test-tiny")
    assert_user_error(result, "nope.jpg")


def test_error_unreadable_image(runner, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"this is not a jpeg at all")
    assert_user_error(run(runner, "segment", bad, "--point", "1,1", "-m", "test-tiny"), "bad.jpg")


def test_error_point_outside_image(runner, small_image):
    result = run(runner, "segment", small_image, "--point", "500,10", "-m", "test-tiny")
    assert_user_error(result, "outside")


def test_error_box_reversed(runner, small_image):
    result = run(runner, "segment", small_image, "--box", "60,10,20,50", "-m", "test-tiny")
    assert_user_error(result, "x1 < x0")


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--point", "3"),
        ("--point", "a,b"),
        ("--neg-point", "1,2,3"),
        ("--box", "1,2,3"),
        ("--point", "nan,2"),
    ],
)
def test_error_malformed_prompt(runner, small_image, flag, value):
    result = run(runner, "segment", small_image, flag, value, "-m", "test-tiny")
    assert_user_error(result, flag, repr(value))


def test_error_no_prompt(runner, small_image):
    assert_user_error(run(runner, "segment", small_image, "-m", "test-tiny"), "no prompt")


def test_error_missing_checkpoint_file(runner, small_image, tmp_path):
    result = run(
        runner,
        "segment",
        small_image,
        "-p",
        "5,5",
        "-m",
        "test-tiny",
        "--checkpoint",
        tmp_path / "missing.pth",
    )
    assert_user_error(result, "missing.pth")


def test_error_not_a_checkpoint(runner, small_image, tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_text("definitely not weights\n")
    result = run(
        runner, "segment", small_image, "-p", "5,5", "-m", "test-tiny", "--checkpoint", junk
    )
    assert_user_error(result, "junk.pth")


def test_error_no_cached_weights(runner, small_image, tmp_path):
    result = run(
        runner, "segment", small_image, "-p", "5,5", "--model", "vit_b", "--cache", tmp_path / "c"
    )
    assert_user_error(result, "tijeras download sam-vit-b", "--checkpoint", "--model classic")


def test_error_unknown_model(runner, small_image):
    result = run(runner, "segment", small_image, "-p", "5,5", "--model", "sam-vit-q")
    assert_user_error(result, "sam-vit-q")


def test_error_bad_device(runner, small_image):
    assert_user_error(
        run(runner, "segment", small_image, "-p", "5,5", "-m", "test-tiny", "--device", "toaster"),
        "--device",
    )


def test_error_unsupported_output_suffix(runner, small_image, tmp_path):
    result = run(
        runner,
        "segment",
        small_image,
        "-p",
        "5,5",
        "-m",
        "test-tiny",
        "--cutout",
        tmp_path / "x.gif",
    )
    assert_user_error(result, "--cutout", ".gif")


@pytest.mark.parametrize(
    ("flag", "name", "words"),
    [
        ("--out", "m.txt", ["--out", ".txt", "a mask is written as PNG", "use .png"]),
        ("--out", "m.jpg", ["--out", ".jpg", "use .png"]),
        ("--sticker", "s.jpg", ["--sticker", "transparency", ".webp"]),
        ("--erase", "e.gif", ["--erase", ".gif"]),
    ],
)
def test_error_output_suffix_before_the_model_loads(
    runner, small_image, tmp_path, flag, name, words
):
    # sam-vit-b has no weights here: the suffix must be refused before the model is looked at
    result = run(
        runner, "segment", small_image, "-p", "5,5", "-m", "sam-vit-b", flag, tmp_path / name
    )
    assert_user_error(result, *words)
    assert not (tmp_path / name).exists()


def test_error_output_folder_is_never_created(runner, small_image, tmp_path):
    target = tmp_path / "no" / "such" / "folder" / "m.png"
    result = run(runner, "segment", small_image, "-p", "5,5", "-m", "test-tiny", "--out", target)
    assert_user_error(result, "--out", "does not exist")
    assert not (tmp_path / "no").exists()


def test_segment_erase_and_sticker(runner, small_image, tmp_path):
    erased, sticker = tmp_path / "erased.jpg", tmp_path / "sticker.webp"
    result = run(
        runner,
        "segment",
        small_image,
        "--box",
        "28,14,72,50",
        "-m",
        "classic",  # weightless, and a real object: the bright square
        "--out",
        tmp_path / "m.png",
        "--erase",
        erased,
        "--erase-dilate",
        "2",
        "--sticker",
        sticker,
        "--sticker-outline",
        "6",
    )
    assert result.exit_code == 0, result.output
    mask = mask_pixels(tmp_path / "m.png") > 0
    assert f"wrote {erased} (object erased, 96x64)" in result.stdout
    assert f"wrote {sticker} (sticker RGBA, 512x512)" in result.stdout
    original = np.asarray(Image.open(small_image).convert("RGB")).astype(int)
    filled = np.asarray(Image.open(erased).convert("RGB")).astype(int)
    near = Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(9))
    far = ~np.asarray(near).astype(bool)  # more than the 2 px dilation away from the object
    assert far.any() and mask.any()
    assert np.abs(filled - original)[far].mean() < 3  # outside the grown mask: the photo (JPEG)
    with Image.open(sticker) as picture:
        assert picture.format == "WEBP" and picture.size == (512, 512) and picture.mode == "RGBA"
        alpha = np.asarray(picture)[..., 3]
    assert alpha[0, 0] == 0 and alpha[256, 256] == 255


def test_segment_empty_mask_writes_no_sticker(runner, tmp_path, monkeypatch):
    flat = tmp_path / "flat.png"
    Image.new("RGB", (40, 30), (90, 90, 90)).save(flat)
    import tijeras

    real = tijeras.Predictor.predict

    def empty(self, *args, **kwargs):
        result = real(self, *args, **kwargs)
        result.masks[...] = False
        return result

    monkeypatch.setattr(tijeras.Predictor, "predict", empty)
    sticker = tmp_path / "s.webp"
    result = run(runner, "segment", flat, "-p", "5,5", "-m", "test-tiny", "--sticker", sticker)
    assert result.exit_code == 0, result.output
    assert "is empty; no cut-out, sticker or erased photo" in result.stderr
    assert not sticker.exists()


def test_unknown_flag_is_a_usage_error(runner, small_image):
    result = run(runner, "segment", small_image, "--frobnicate")
    assert result.exit_code == 2
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- download / models


def test_models_lists_registry(runner, tmp_path):
    result = run(runner, "models", "--cache", tmp_path)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "sam-vit-b" in out and "test-tiny" in out and "vit_b" in out
    assert "375.0" in out  # sam-vit-b's size in MB
    assert "not downloaded" in out
    assert str(tmp_path) in out


def test_models_fits_100_columns(runner, tmp_path):
    result = run(runner, "models", "--cache", tmp_path)
    lines = [line for line in result.stdout.splitlines() if not line.startswith("cache: ")]
    assert max(len(line) for line in lines) <= 100, "\n".join(lines)
    sam21 = next(line for line in lines if line.startswith("sam2.1-hiera-tiny "))
    assert "sam2.1_hiera_t" in sam21 and "(+" in sam21
    assert any("more aliases" in line for line in lines)


def test_download_model_without_weights(runner, tmp_path):
    result = run(runner, "download", "test-tiny", "--cache", tmp_path)
    assert_user_error(result, "no downloadable weights")


def test_download_unknown_model(runner, tmp_path):
    assert_user_error(run(runner, "download", "nope", "--cache", tmp_path), "nope")


@pytest.fixture()
def served_tiny(tmp_path, monkeypatch):
    """A temporary model ``test-tiny-dl`` whose checkpoint is served by a local HTTP server."""
    root = tmp_path / "www"
    root.mkdir()
    torch.manual_seed(7)
    blob = root / "tiny.pth"
    torch.save(build_model("test-tiny").state_dict(), blob)
    data = blob.read_bytes()
    spec = ModelSpec(
        name="test-tiny-dl",
        family="sam",
        config=SAM_TEST_TINY,
        description="test-tiny with a downloadable checkpoint",
        checkpoint=CheckpointFile(
            filename="tiny_dl.pth",
            url="http://127.0.0.1:9/unused",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        ),
    )
    REGISTRY.add(spec)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/tiny.pth"
    finally:
        server.shutdown()
        server.server_close()
        REGISTRY.remove(spec.name)


def test_download_then_models_then_segment(runner, served_tiny, small_image, tmp_path):
    cache = tmp_path / "cache"
    result = run(runner, "download", "test-tiny-dl", "--cache", cache, "--url", served_tiny, "-q")
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.strip())
    assert path == cache / "tiny_dl.pth" and path.is_file()

    listing = run(runner, "models", "--cache", cache)
    row = next(line for line in listing.stdout.splitlines() if line.startswith("test-tiny-dl"))
    assert row.endswith("  downloaded")
    assert f"cache: {cache}" in listing.stdout

    seg = run(runner, "segment", small_image, "-p", "50,30", "-m", "test-tiny-dl", "--cache", cache)
    assert seg.exit_code == 0, seg.output
    assert "random weights" not in seg.stderr


def test_download_url_with_several_names(runner, tmp_path):
    result = run(runner, "download", "sam-vit-b", "sam-vit-l", "--url", "http://127.0.0.1:9/x")
    assert_user_error(result, "--url")


def test_version(runner):
    from tijeras import __version__

    result = run(runner, "--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"tijeras {__version__}"


def test_doctor(runner):
    result = run(runner, "doctor")
    assert result.exit_code == 0, result.output
    assert "allocator:" in result.stdout and f"torch: {torch.__version__}" in result.stdout


# --------------------------------------------------------------------------- main() and re-exec


def _env(**changes: str | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TIJERAS_ALLOCATOR", "TIJERAS_REEXEC", "LD_PRELOAD", "MALLOC_CONF")
    }
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _python(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, *args]
    output = {"capture_output": True, "text": True}
    return subprocess.run(command, env=env, cwd=REPO, timeout=300, check=False, **output)


def test_python_m_tijeras_models():
    proc = _python("-m", "tijeras", "models", env=_env())
    assert proc.returncode == 0, proc.stderr
    assert "sam-vit-b" in proc.stdout and "test-tiny" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_python_m_tijeras_user_error_has_no_traceback(tmp_path):
    proc = _python(
        "-m",
        "tijeras",
        "segment",
        str(tmp_path / "gone.png"),
        "-p",
        "1,1",
        "-m",
        "test-tiny",
        env=_env(),
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error:") and len(proc.stderr.strip().splitlines()) == 1


def test_main_reexecs_under_jemalloc():
    library = cli.find_jemalloc()
    if library is None:
        pytest.skip("libjemalloc.so.2 is not installed on this machine (apt install libjemalloc2)")
    snippet = (
        "import sys; from tijeras.cli.main import main; sys.argv = ['tijeras', 'doctor']; main()"
    )
    proc = _python("-c", snippet, env=_env())
    assert proc.returncode == 0, proc.stderr
    assert "allocator: jemalloc" in proc.stdout, proc.stdout
    assert "re-executed: yes" in proc.stdout
    assert cli.JEMALLOC_CONF in proc.stdout

    # The same snippet with the opt-out keeps the system allocator.
    proc = _python("-c", snippet, env=_env(TIJERAS_ALLOCATOR="system"))
    assert proc.returncode == 0, proc.stderr
    assert "allocator: system" in proc.stdout and "re-executed: no" in proc.stdout


class _Exec(Exception):
    pass


@pytest.fixture()
def fake_exec(monkeypatch):
    """Capture os.execve instead of replacing the test process."""
    calls: list[tuple[str, list[str], dict[str, str]]] = []

    def execve(path, argv, env):
        calls.append((path, list(argv), dict(env)))
        raise _Exec

    monkeypatch.setattr(cli.os, "execve", execve)
    monkeypatch.setattr(cli, "jemalloc_loaded", lambda: None)
    monkeypatch.setattr(cli, "find_jemalloc", lambda: "/opt/lib/libjemalloc.so.2")
    monkeypatch.setattr(cli.sys, "platform", "linux")
    monkeypatch.setattr(cli.sys, "argv", ["tijeras", "models", "--cache", "x y"])
    for key in ("TIJERAS_ALLOCATOR", "TIJERAS_REEXEC", "MALLOC_CONF"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LD_PRELOAD", "libfoo.so")
    return calls


def test_reexec_arguments_and_environment(fake_exec):
    with pytest.raises(_Exec):
        cli.maybe_reexec_with_jemalloc()
    path, argv, env = fake_exec[0]
    assert path == sys.executable
    assert argv[0] == sys.executable and argv[-5:] == ["-m", "tijeras", "models", "--cache", "x y"]
    assert env["LD_PRELOAD"] == "/opt/lib/libjemalloc.so.2:libfoo.so"
    assert env["MALLOC_CONF"] == "background_thread:false,dirty_decay_ms:-1,muzzy_decay_ms:-1"
    assert env["TIJERAS_REEXEC"] == "1"


def test_reexec_keeps_user_malloc_conf(fake_exec, monkeypatch):
    monkeypatch.setenv("MALLOC_CONF", "narenas:2")
    with pytest.raises(_Exec):
        cli.maybe_reexec_with_jemalloc()
    assert fake_exec[0][2]["MALLOC_CONF"] == "narenas:2"


@pytest.mark.parametrize(
    "setup",
    ["system", "marker", "not-linux", "no-library", "already-loaded"],
)
def test_reexec_skipped(fake_exec, monkeypatch, setup):
    if setup == "system":
        monkeypatch.setenv("TIJERAS_ALLOCATOR", "system")
    elif setup == "marker":
        monkeypatch.setenv("TIJERAS_REEXEC", "1")
    elif setup == "not-linux":
        monkeypatch.setattr(cli.sys, "platform", "darwin")
    elif setup == "no-library":
        monkeypatch.setattr(cli, "find_jemalloc", lambda: None)
    else:
        monkeypatch.setattr(cli, "jemalloc_loaded", lambda: "/usr/lib/libjemalloc.so.2")
    cli.maybe_reexec_with_jemalloc()  # returns instead of exec'ing
    assert fake_exec == []


@pytest.mark.parametrize(
    "command",
    [
        ["export", "nope"],
        ["segment", "{image}", "--point", "1,1", "--model", "nope"],
        ["everything", "{image}", "--out", "{out}", "--model", "nope"],
        ["track", "{image}", "--point", "0:1,1", "--out", "{out}", "--model", "nope"],
        ["eval", "--data", "{out}", "--model", "nope"],
    ],
    ids=lambda c: c[0],
)
def test_an_unknown_model_is_one_error_line_in_every_command(
    runner, small_image, tmp_path, command
):
    args = [a.format(image=small_image, out=tmp_path) for a in command]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith("error: unknown model 'nope'"), lines
