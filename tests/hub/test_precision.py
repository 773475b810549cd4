"""``dtype="auto"``: the choice per CPU and device, load_model and the CLI honouring it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import tijeras
from tijeras.cli.main import app
from tijeras.hub import precision
from tijeras.hub.precision import CpuInfo, choose_precision, cpu_info, measure_rates


def _cpuinfo(tmp_path: Path, flags: str) -> Path:
    text = (
        "processor\t: 0\nvendor_id\t: GenuineIntel\n"
        "model name\t: Intel(R) Xeon(R) Platinum 8480+\n"
        f"flags\t\t: fpu sse2 avx2 fma {flags}\n\nprocessor\t: 1\nflags\t\t: fpu\n"
    )
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return path


def test_cpu_info_reads_the_first_cpu(tmp_path: Path) -> None:
    info = cpu_info.__wrapped__(str(_cpuinfo(tmp_path, "avx512f amx_tile amx_bf16 amx_int8")))
    assert info.model == "Intel(R) Xeon(R) Platinum 8480+"
    assert {"amx_bf16", "amx_int8", "avx2"} <= info.flags
    assert info.isa == "avx2 fma avx512f amx_tile amx_bf16 amx_int8"


def test_cpu_info_without_the_file_is_empty(tmp_path: Path) -> None:
    info = cpu_info.__wrapped__(str(tmp_path / "missing"))
    assert info.flags == frozenset() and info.isa == "-"


@pytest.mark.parametrize(
    ("flags", "encoder", "word"),
    [
        ("avx512f avx512_bf16 amx_tile amx_bf16", torch.bfloat16, "AMX"),
        ("avx512f avx512_vnni avx512_bf16", torch.bfloat16, "AVX-512 BF16"),
        ("avx512f avx512_vnni", torch.float32, "no bfloat16"),
        ("", torch.float32, "no bfloat16"),
    ],
)
def test_the_cpu_choice_follows_its_bf16_hardware(
    monkeypatch: pytest.MonkeyPatch, flags: str, encoder: torch.dtype, word: str
) -> None:
    monkeypatch.setattr(precision, "cpu_info", lambda: CpuInfo("x", frozenset(flags.split())))
    chosen = choose_precision("cpu")
    assert chosen.encoder == encoder
    assert chosen.decoder == torch.float32  # the prompt side stays float32 everywhere
    assert word in chosen.reason
    expected = "float32" if encoder == torch.float32 else "bfloat16 encoder + float32 decoder"
    assert chosen.label == expected


def test_other_devices_keep_float32() -> None:
    chosen = choose_precision("mps")
    assert chosen.encoder == chosen.decoder == torch.float32


@pytest.mark.parametrize("flags", ["amx_bf16", ""])
def test_load_model_auto_uses_the_choice(monkeypatch: pytest.MonkeyPatch, flags: str) -> None:
    monkeypatch.setattr(precision, "cpu_info", lambda: CpuInfo("x", frozenset(flags.split())))
    model = tijeras.load_model("test-tiny", dtype="auto")
    chosen = choose_precision("cpu")
    assert model.encoder_dtype == chosen.encoder
    assert model.dtype == torch.float32
    # an explicit decoder dtype wins over the choice
    model = tijeras.load_model("test-tiny", dtype="auto", decoder_dtype="bfloat16")
    assert model.dtype == torch.bfloat16


def test_unknown_dtype_names_auto() -> None:
    with pytest.raises(tijeras.TijerasError, match="auto"):
        tijeras.load_model("test-tiny", dtype="float8")


def test_measure_rates_is_positive() -> None:
    rates = measure_rates("cpu", size=(64, 64, 64), seconds=0.01)
    assert set(rates) == {torch.float32, torch.bfloat16}
    assert all(r > 0 for r in rates.values())


def test_doctor_says_what_auto_picks() -> None:
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "cpu flags:" in result.output
    chosen = choose_precision("cpu")
    assert f"dtype auto on cpu: {chosen.label} ({chosen.reason})" in result.output
