"""tijeras as a Model Context Protocol server: segmentation tools for language-model clients.

Tools (one open image at a time; found objects are kept as numbered instances):

- ``open_image(path)``: load and encode an image; answers its size;
- ``segment_text(text, threshold=0.5)``: every instance of a noun phrase (SAM 3 models);
- ``segment_point(x, y, label=1)``, ``segment_box(x0, y0, x1, y1)``: one object, any family;
- ``list_instances()``: the instances so far: id, box, score, area, prompt;
- ``save_mask(instance_id, path)``, ``save_cutout(instance_id, path)``: PNG files.

Coordinates are image pixels. A mistake (no image open, unknown instance, unreadable file,
point outside the image, a model without text prompts) is answered as a tool error whose
message names it; the server keeps serving. The model is loaded on the first ``open_image``.

Needs the ``mcp`` package (``pip install 'tijeras[mcp]'``).
"""

from __future__ import annotations

import argparse
import functools
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import PromptError, TijerasError
from .predictor import ContractPredictor, Instance


class ServerState:
    """The server's state: the model, the open image and its instances."""

    def __init__(self, model_loader: Callable[[], Any]) -> None:
        self.model_loader = model_loader
        self.predictor: ContractPredictor | None = None
        self.image: Any = None
        self.path: str | None = None
        self.instances: list[Instance] = []
        self.lock = threading.Lock()

    def need_image(self) -> ContractPredictor:
        if self.predictor is None or self.image is None:
            raise PromptError("no image is open: call open_image(path) first")
        return self.predictor

    def instance(self, instance_id: int) -> Instance:
        if not 0 <= instance_id < len(self.instances):
            known = f"0 to {len(self.instances) - 1}" if self.instances else "none yet"
            raise PromptError(f"no instance {instance_id} (instances: {known})")
        return self.instances[instance_id]

    def check_point(self, x: float, y: float) -> None:
        h, w = self.image.shape[:2]
        if not (0 <= x < w and 0 <= y < h):
            raise PromptError(f"point ({x}, {y}) is outside the {w} x {h} image")

    def add(self, found: list[Instance]) -> list[dict[str, Any]]:
        start = len(self.instances)
        self.instances.extend(found)
        return [describe(start + i, inst) for i, inst in enumerate(found)]


def describe(instance_id: int, inst: Instance) -> dict[str, Any]:
    return {
        "id": instance_id,
        "box": [round(v, 1) for v in inst.box],
        "score": round(inst.score, 4),
        "area": int(inst.mask.sum()),
        "prompt": inst.source,
    }


def _output_path(path: str) -> Path:
    out = Path(path).expanduser()
    if out.suffix.lower() != ".png":
        raise PromptError(f"{path}: the output file must end in .png")
    if not out.parent.is_dir():
        raise PromptError(f"{path}: folder {out.parent} does not exist")
    return out


def build_server(model_loader: Callable[[], Any], name: str = "tijeras") -> Any:
    """An MCP server (``mcp.server.mcpserver.MCPServer``) with the segmentation tools.

    Args:
        model_loader: returns the model (any family of the model contract); called once, on
            the first ``open_image``.
    """
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    state = ServerState(model_loader)
    server = MCPServer(name, instructions=__doc__)

    def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
        """One tool call at a time; tijeras' errors become tool errors with their message."""

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with state.lock:
                try:
                    return fn(*args, **kwargs)
                except TijerasError as exc:
                    raise ToolError(str(exc)) from None

        return run

    @server.tool()
    @guarded
    def open_image(path: str) -> dict[str, Any]:
        """Open and encode an image file (replaces the open image and its instances)."""
        from ..io import load_image

        image = load_image(Path(path).expanduser())
        if state.predictor is None:
            state.predictor = ContractPredictor(state.model_loader())
        state.predictor.set_image(image)
        state.image, state.path, state.instances = image, path, []
        return {"path": path, "width": int(image.shape[1]), "height": int(image.shape[0])}

    @server.tool()
    @guarded
    def segment_text(text: str, threshold: float = 0.5) -> dict[str, Any]:
        """Find every instance of a noun phrase ("tomato", "red car"); adds them as instances."""
        if not 0.0 <= threshold <= 1.0:
            raise PromptError(f"threshold must be in [0, 1], got {threshold}")
        found = state.need_image().segment_text(text, threshold)
        return {"count": len(found), "instances": state.add(found)}

    @server.tool()
    @guarded
    def segment_point(x: float, y: float, label: int = 1) -> dict[str, Any]:
        """Segment the object at pixel (x, y) (label 1), or with a background point (label 0)."""
        predictor = state.need_image()
        state.check_point(x, y)
        if label not in (0, 1):
            raise PromptError(f"label must be 1 (object) or 0 (background), got {label}")
        return state.add([predictor.predict([(x, y)], [label], None)])[0]

    @server.tool()
    @guarded
    def segment_box(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
        """Segment the object inside a box (pixels, x0 < x1, y0 < y1)."""
        predictor = state.need_image()
        state.check_point(x0, y0)
        state.check_point(max(x0, x1 - 1), max(y0, y1 - 1))
        if x1 <= x0 or y1 <= y0:
            raise PromptError(f"box ({x0}, {y0}, {x1}, {y1}) needs x0 < x1 and y0 < y1")
        return state.add([predictor.predict(None, None, (x0, y0, x1, y1))])[0]

    @server.tool()
    @guarded
    def list_instances() -> dict[str, Any]:
        """The instances found on the open image: id, box, score, area, prompt."""
        state.need_image()
        items = [describe(i, inst) for i, inst in enumerate(state.instances)]
        return {"image": state.path, "instances": items}

    @server.tool()
    @guarded
    def save_mask(instance_id: int, path: str) -> dict[str, Any]:
        """Write an instance's mask as a black-and-white PNG."""
        from ..io.export import save_mask_png

        inst = state.instance(instance_id)
        out = _output_path(path)
        save_mask_png(inst.mask, out)
        return {"path": str(out), "area": int(inst.mask.sum())}

    @server.tool()
    @guarded
    def save_cutout(instance_id: int, path: str) -> dict[str, Any]:
        """Write an instance cut out of the image as a transparent PNG (cropped to it)."""
        from ..io.export import cutout, save_image

        inst = state.instance(instance_id)
        if not inst.mask.any():
            raise PromptError(f"instance {instance_id} has an empty mask: nothing to cut out")
        out = _output_path(path)
        rgba = cutout(state.image, inst.mask)
        save_image(rgba, out)
        return {"path": str(out), "width": int(rgba.shape[1]), "height": int(rgba.shape[0])}

    return server


def load_named_model(name: str, checkpoint: str | None, device: str) -> Any:
    """A registered model (any family) with its weights, as :func:`tijeras.load_model`
    finds them: ``checkpoint``, else the cache (SAM 3's gated ``sam3.pt`` is placed there by
    hand)."""
    from ..api import load_model

    return load_model(name, checkpoint, device=device)


def main(argv: Sequence[str] | None = None) -> None:
    """``tijeras mcp``: serve the tools over stdio."""
    parser = argparse.ArgumentParser(prog="tijeras mcp", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sam3", help="registered model name (default sam3)")
    parser.add_argument("--checkpoint", default=None, help="weights file")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    try:
        import mcp  # noqa: F401
    except ImportError:
        parser.exit(2, "error: the MCP server needs the mcp package: pip install 'tijeras[mcp]'\n")
    server = build_server(lambda: load_named_model(args.model, args.checkpoint, args.device))
    server.run("stdio")
