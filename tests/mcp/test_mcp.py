"""The MCP server, driven by the SDK's own client over stdio (``python -m tijeras.mcp``) with
the tiny random-weight SAM 3 model: every tool, and the errors a client can cause."""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

mcp = pytest.importorskip("mcp", reason="the MCP server needs the optional mcp package")

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def payload(result) -> dict:
    """A tool result's JSON (structured content, else its text)."""
    if result.structured_content is not None:
        data = result.structured_content
        return data.get("result", data) if set(data) == {"result"} else data
    return json.loads(result.content[0].text)


def error_text(result) -> str:
    assert result.is_error, result
    return " ".join(getattr(c, "text", "") for c in result.content)


async def session_run(tmp_path, steps):
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "tijeras.mcp", "--model", "sam3-test-tiny"],
        env={"OMP_NUM_THREADS": "1", "TIJERAS_CACHE": str(tmp_path / "cache")},
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        return await steps(session)


def test_tools_over_stdio(tmp_path):
    anyio = pytest.importorskip("anyio")
    rng = np.random.default_rng(0)
    image = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(image)

    async def steps(session):
        names = {t.name for t in (await session.list_tools()).tools}
        assert names >= {
            "open_image",
            "segment_text",
            "segment_point",
            "segment_box",
            "list_instances",
            "save_mask",
            "save_cutout",
        }
        out = {}
        out["early"] = await session.call_tool("segment_point", {"x": 5, "y": 5})
        out["missing"] = await session.call_tool("open_image", {"path": str(tmp_path / "no.png")})
        out["open"] = await session.call_tool("open_image", {"path": str(image)})
        out["text"] = await session.call_tool("segment_text", {"text": "tomato", "threshold": 0.0})
        out["none"] = await session.call_tool("segment_text", {"text": "tomato", "threshold": 1.0})
        out["empty"] = await session.call_tool("segment_text", {"text": ""})
        out["point"] = await session.call_tool("segment_point", {"x": 80, "y": 60})
        out["outside"] = await session.call_tool("segment_point", {"x": 500, "y": 60})
        out["box"] = await session.call_tool(
            "segment_box", {"x0": 10, "y0": 10, "x1": 90, "y1": 70}
        )
        out["list"] = await session.call_tool("list_instances", {})
        out["mask"] = await session.call_tool(
            "save_mask", {"instance_id": 16, "path": str(tmp_path / "mask.png")}
        )
        out["cutout"] = await session.call_tool(
            "save_cutout", {"instance_id": 17, "path": str(tmp_path / "cut.png")}
        )
        out["unknown"] = await session.call_tool(
            "save_mask", {"instance_id": 99, "path": str(tmp_path / "x.png")}
        )
        out["folder"] = await session.call_tool(
            "save_mask", {"instance_id": 0, "path": str(tmp_path / "nowhere" / "x.png")}
        )
        return out

    # On a thread of its own: a browser test's Playwright keeps an event loop running on this
    # one for the rest of the session.
    with ThreadPoolExecutor(1) as pool:
        out = pool.submit(anyio.run, session_run, tmp_path, steps).result()
    assert "open_image" in error_text(out["early"])
    assert "no.png" in error_text(out["missing"])
    assert payload(out["open"]) == {"path": str(image), "width": 160, "height": 120}
    text = payload(out["text"])
    assert text["count"] == 16 and len(text["instances"]) == 16
    assert payload(out["none"])["count"] == 0
    assert "context length is 32" in error_text(out["empty"])
    point = payload(out["point"])
    assert point["id"] == 16 and 0.0 <= point["score"] <= 1.0
    assert "outside" in error_text(out["outside"])
    assert payload(out["box"])["id"] == 17
    assert len(payload(out["list"])["instances"]) == 18
    mask = np.array(Image.open(tmp_path / "mask.png"))
    assert mask.shape == (120, 160) and set(np.unique(mask)) <= {0, 255}
    assert payload(out["mask"])["area"] == int((mask > 0).sum())
    if not out["cutout"].is_error:  # a random-weight box mask may be empty
        assert Image.open(tmp_path / "cut.png").mode == "RGBA"
    assert "no instance 99" in error_text(out["unknown"])
    assert "does not exist" in error_text(out["folder"])
