"""Fixtures of the drop-in tests (see :mod:`compat.harness`).

Models: a tiny SAM (the structure of tijeras' ``test-tiny``) built with the official classes,
every parameter perturbed, saved as a ``.pth`` file that both sides load through their
``sam_model_registry`` under the key ``vit_tiny``; and Meta's SAM 2.1 Hiera-T likewise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from compat.harness import SAM2_CONFIG, Backends, official_tiny_sam
from helpers.parity import perturb


@pytest.fixture(scope="session")
def backends() -> Backends:
    pytest.importorskip("segment_anything", reason="needs Meta's segment-anything package")
    return Backends()


@pytest.fixture(scope="session")
def tiny_checkpoint(backends: Backends, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Perturbed random weights of the tiny SAM, saved as Meta's files are."""
    with backends.use("official"):
        torch.manual_seed(0)
        sam = official_tiny_sam()
        perturb(sam, scale=0.05)
    path = tmp_path_factory.mktemp("tiny") / "sam_vit_tiny_perturbed.pth"
    torch.save(sam.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def small_photo(truck_image: np.ndarray) -> np.ndarray:
    """The truck photo at 300 x 200: every client decodes it quickly."""
    from PIL import Image

    return np.array(Image.fromarray(truck_image).resize((300, 200)))


@pytest.fixture(scope="session")
def photo_file(small_photo: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``small_photo`` as a PNG file in a folder of its own (what the scripts read)."""
    import cv2

    folder = tmp_path_factory.mktemp("photos")
    path = folder / "truck.png"
    cv2.imwrite(str(path), small_photo[..., ::-1])
    return path


@pytest.fixture(scope="session")
def sam2_checkpoint(backends: Backends, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Perturbed random weights of Meta's SAM 2.1 Hiera-T, saved as Meta's files are."""
    pytest.importorskip("hydra", reason="Meta's sam2 configs need hydra")
    with backends.use("official"):
        sam2 = pytest.importorskip("sam2", reason="needs Meta's sam2 package")
        from hydra import compose, initialize_config_module
        from hydra.core.global_hydra import GlobalHydra
        from hydra.utils import instantiate

        if not GlobalHydra.instance().is_initialized():
            initialize_config_module("sam2", version_base="1.2")
        assert sam2 is not None
        torch.manual_seed(0)
        model = instantiate(compose(config_name=SAM2_CONFIG).model, _recursive_=True)
        perturb(model)
    path = tmp_path_factory.mktemp("sam2") / "sam2.1_hiera_tiny_perturbed.pt"
    torch.save({"model": model.state_dict()}, path)
    return path
