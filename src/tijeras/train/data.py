"""Training data: per-object targets in the decoder's low-res frame and cached embeddings.

Each object becomes a :class:`TrainObject`: its target and valid mask at the decoder's
low-res resolution (the padded input square / 4: 256 x 256 for SAM), its tight box in the
input frame and the sizes. With a frozen image encoder every image is encoded once, with a
progress bar, into ``.safetensors`` files (:mod:`tijeras.engine.embedding_file`) keyed by the
image file and a digest of the encoder weights, so a second run (or a resumed one) reuses them.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..engine import transforms
from ..engine.embedding_file import load_embedding, save_embedding
from ..evaluate.dataset import ObjectSample
from ..types import ImageEmbedding


@dataclass
class TrainObject:
    """One training object.

    Attributes:
        sample: where it comes from.
        gt: S x S bool target in the low-res frame.
        valid: S x S bool cells inside the image and not ignored.
        box: 4 float tight box (x0, y0, x1, y1) in the input frame.
        input_size: (h, w) of the resized image.
        original_size: (H, W) of the image.
    """

    sample: ObjectSample
    gt: torch.Tensor
    valid: torch.Tensor
    box: torch.Tensor
    input_size: tuple[int, int]
    original_size: tuple[int, int]


def low_res_targets(
    mask: np.ndarray, ignore: np.ndarray | None, input_size: tuple[int, int], square: int, low: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Target, valid cells (low x low bool) and the tight input-frame box of an object.

    The mask is resized to the input frame (bilinear, threshold 0.5), padded to the
    ``square`` x ``square`` model input and area-averaged to ``low`` x ``low`` (threshold 0.5);
    an object too small to survive keeps one pixel / one cell at its centre.
    """
    h, w = input_size
    resized = _resize_bool(mask, (h, w)) >= 0.5
    if not resized.any():
        cy, cx = np.argwhere(mask).mean(axis=0) * (h / mask.shape[0], w / mask.shape[1])
        resized[min(h - 1, int(cy)), min(w - 1, int(cx))] = True
    valid = torch.ones((h, w), dtype=torch.bool)
    if ignore is not None:
        valid = _resize_bool(ignore, (h, w)) < 0.5
    ys, xs = torch.nonzero(resized, as_tuple=True)
    box = torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float()
    factor = square // low

    def down(x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x.float(), (0, square - w, 0, square - h))
        return F.avg_pool2d(padded[None, None], factor)[0, 0] >= 0.5

    gt = down(resized)
    if not gt.any():
        cx, cy = ((box[:2] + box[2:]) / 2 // factor).long().clamp(max=low - 1).tolist()
        gt[cy, cx] = True
    return gt, down(valid) | gt, box


def _resize_bool(mask: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    m = torch.from_numpy(mask.astype(np.float32))[None, None]
    return F.interpolate(m, size, mode="bilinear", align_corners=False)[0, 0]


def encoder_digest(model: torch.nn.Module) -> str:
    """A short digest of the image encoder's weights (embedding files are keyed by it)."""
    digest = hashlib.sha1()
    for key, value in model.image_encoder_module().state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


class EmbeddingStore:
    """Image embeddings of a frozen encoder, in files under ``folder`` (and a few in memory).

    Args:
        folder: where the ``.safetensors`` files go.
        model: the SAM model (its encoder is run for images without a file).
        keep: how many embeddings to keep in memory.
    """

    def __init__(self, folder: str | Path, model: torch.nn.Module, keep: int = 64) -> None:
        self.folder = Path(folder)
        self.model = model
        self.digest = encoder_digest(model)
        self.keep = keep
        self._memory: OrderedDict[Path, torch.Tensor] = OrderedDict()

    def path_for(self, image_path: Path) -> Path:
        stat = image_path.stat()
        key = f"{image_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{self.digest}"
        name = hashlib.sha1(key.encode()).hexdigest()[:20]
        return self.folder / f"{image_path.stem[:40]}-{name}.safetensors"

    def has(self, image_path: Path) -> bool:
        return self.path_for(image_path).is_file()

    def encode(self, image: np.ndarray, image_path: Path) -> None:
        """Run the encoder on an H x W x 3 uint8 image and write its embedding file."""
        from ..engine.predictor import Predictor

        predictor = Predictor(self.model, cache_size=0, model_name="train")
        resized = transforms.resize_for(self.model.input_spec, image)
        tensor = transforms.image_to_tensor(resized, self.model.device)
        embedding = predictor.encode(tensor, (image.shape[0], image.shape[1]))
        save_embedding(embedding.to("cpu", torch.float32), self.path_for(image_path))

    def features(self, image_path: Path) -> torch.Tensor:
        """The 1 x C x h x w float32 embedding of an image (CPU)."""
        if image_path in self._memory:
            self._memory.move_to_end(image_path)
            return self._memory[image_path]
        feats = load_embedding(self.path_for(image_path)).features.float()
        self._memory[image_path] = feats
        while len(self._memory) > self.keep:
            self._memory.popitem(last=False)
        return feats

    def embedding_for(self, sample: ObjectSample) -> ImageEmbedding:
        """A fresh :class:`ImageEmbedding` for the predictor (no decoder state carried over)."""
        return replace(load_embedding(self.path_for(sample.image_path)), model_name="train")


def prepare_objects(
    samples: Sequence[ObjectSample],
    model: torch.nn.Module,
    store: EmbeddingStore | None,
    *,
    progress: bool = True,
    desc: str = "preparing",
) -> list[TrainObject]:
    """Targets of every object, and the embedding files of every image (when ``store``)."""
    from tqdm import tqdm

    square = model.input_spec.image_size
    low = model.input_spec.mask_input_size[0]
    objects = []
    for sample in tqdm(samples, desc=desc, unit="obj", disable=not progress, leave=False):
        image, mask, ignore = sample.load()
        size = transforms.input_size(image.shape[0], image.shape[1], square)
        gt, valid, box = low_res_targets(mask, ignore, size, square, low)
        objects.append(TrainObject(sample, gt, valid, box, size, (image.shape[0], image.shape[1])))
        if store is not None and not store.has(sample.image_path):
            store.encode(image, sample.image_path)
    return objects


def image_batch(objects: Sequence[TrainObject], model: torch.nn.Module) -> torch.Tensor:
    """B x 3 x S x S preprocessed images of the objects (for an encoder that trains)."""
    from ..io.image import load_image

    tensors = []
    for obj in objects:
        resized = transforms.resize_for(model.input_spec, load_image(obj.sample.image_path))
        x = transforms.image_to_tensor(resized, model.device)
        tensors.append(model.preprocess(x)[0])
    return torch.stack(tensors)
