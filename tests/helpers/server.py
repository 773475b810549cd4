"""Helpers for the server tests: an app on the tiny random model, upload-and-wait."""

from __future__ import annotations

import time
from typing import Any

import torch
from fastapi.testclient import TestClient

from tijeras import load_model
from tijeras.server.app import create_app
from tijeras.server.backend import Backend
from tijeras.server.settings import ServerSettings

_BACKEND: Backend | None = None


def tiny_backend() -> Backend:
    """The tiny random SAM (seeded), loaded once per test session."""
    global _BACKEND
    if _BACKEND is None:
        torch.manual_seed(0)
        _BACKEND = Backend(load_model("test-tiny"), "test-tiny", "tiny random SAM for tests")
    return _BACKEND


def client(**settings: Any) -> TestClient:
    """A test client (use as a context manager so the lifespan runs)."""
    return TestClient(create_app(ServerSettings(**settings), backend=tiny_backend()))


def wait_ready(c: TestClient, image_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = c.get(f"/api/images/{image_id}").json()
        if status["status"] in ("ready", "failed"):
            return status
        time.sleep(0.02)
    raise AssertionError(f"image {image_id} was not encoded within {timeout} s")


def upload(c: TestClient, data: bytes, name: str = "image.jpg") -> dict[str, Any]:
    response = c.post("/api/images", content=data, headers={"X-Filename": name})
    assert response.status_code == 201, response.text
    return wait_ready(c, response.json()["id"])


def wait_everything(c: TestClient, image_id: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = c.get(f"/api/images/{image_id}/everything").json()
        if state["status"] in ("done", "failed"):
            return state
        time.sleep(0.05)
    raise AssertionError("everything mode did not finish")
