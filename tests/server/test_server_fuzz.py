"""Fuzzing the whole OpenAPI surface with schemathesis over real HTTP (uvicorn in a thread): no
answer is a 5xx, and the server keeps serving. Generated ids are swapped for real ones half of
the time, so the fuzzing reaches past the 404s into the handlers of an encoded image, its masks
and its objects (the image is uploaded again when a case deleted it)."""

from __future__ import annotations

import io
import tempfile
import threading
import time
from pathlib import Path

import pytest
from helpers.server import tiny_backend
from helpers.video import present_model
from helpers.web import free_port
from hypothesis import HealthCheck, given, settings
from PIL import Image

from tijeras.server.app import create_app
from tijeras.server.settings import ServerSettings

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a test dependency")
requests = pytest.importorskip("requests")
from schemathesis.checks import not_a_server_error

# Cases per operation: a quick pass in the default run (about 20 s on a small, busy CPU) and
# a deeper one among the slow tests.
QUICK, DEEP = 10, 100


def _photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 60, 30)).save(out, format="PNG")
    return out.getvalue()


def _upload(session, url: str, name: str) -> str:
    answer = session.post(f"{url}/api/images", data=_photo(), headers={"X-Filename": name})
    assert answer.status_code == 201, answer.text
    image_id = answer.json()["id"]
    deadline = time.monotonic() + 120
    while session.get(f"{url}/api/images/{image_id}").json()["status"] != "ready":
        assert time.monotonic() < deadline, "the image was not encoded"
        time.sleep(0.05)
    return image_id


def _video(session, url: str) -> str:
    """A short clip, uploaded and prompted (the video routes' real id)."""
    from helpers.video import square_clip

    with tempfile.TemporaryDirectory() as folder:
        data = square_clip(Path(folder) / "clip.mp4", frames=4)
    answer = session.post(f"{url}/api/videos", data=data, headers={"X-Filename": "fuzz.mp4"})
    assert answer.status_code == 201, answer.text
    video_id = answer.json()["id"]
    prompt = {"frame": 0, "object": 1, "points": [[25, 45]], "labels": [1]}
    assert session.post(f"{url}/api/videos/{video_id}/prompts", json=prompt).status_code == 200
    return video_id


class Real:
    """Ids that exist on the server under test (made again when a case deleted them)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.lock = threading.Lock()
        self.ids: dict[str, str] = {}
        self.refresh()

    def refresh(self) -> None:
        s, url = self.session, self.url
        image_id = _upload(s, url, "fuzz.png")
        prompt = {"points": [[10, 10]], "labels": [1]}
        mask_id = s.post(f"{url}/api/images/{image_id}/segment", json=prompt).json()["masks"][0]
        kept = s.post(
            f"{url}/api/images/{image_id}/objects", json={"mask_id": mask_id["id"], "name": "x"}
        )
        video_id = self.ids.get("video_id", "")
        self.ids = {"image_id": image_id, "mask_id": mask_id["id"], "object_id": kept.json()["id"]}
        self.ids["video_id"] = video_id or _video(s, url)

    def get(self) -> dict[str, str]:
        with self.lock:
            if self.session.get(f"{self.url}/api/images/{self.ids['image_id']}").status_code == 404:
                self.refresh()
            if self.session.get(f"{self.url}/api/videos/{self.ids['video_id']}").status_code == 404:
                self.ids["video_id"] = _video(self.session, self.url)
            return dict(self.ids)


@pytest.fixture(scope="module")
def live_server():
    import uvicorn

    app = create_app(
        ServerSettings(max_images=4, max_everything_prompts=64, max_upload_mb=1),
        backend=tiny_backend(),
        video_model=present_model(),
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield url
    server.should_exit = True
    thread.join(30)


@pytest.mark.parametrize("examples", [QUICK, pytest.param(DEEP, marks=pytest.mark.slow)])
def test_no_request_is_answered_with_a_server_error(live_server: str, examples: int) -> None:
    real = Real(live_server)
    schema = schemathesis.openapi.from_url(f"{live_server}/openapi.json")

    @schema.hook
    def map_path_parameters(context, path_parameters):
        if not path_parameters:
            return path_parameters
        given = path_parameters.get("image_id", path_parameters.get("video_id", ""))
        if len(str(given)) % 2 == 0:
            ids = real.get()
            for key in ("image_id", "mask_id", "object_id", "video_id"):
                if key in path_parameters:
                    path_parameters[key] = ids[key]
        return path_parameters

    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    failures = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case) -> None:
            case.call_and_validate(base_url=live_server, checks=[not_a_server_error])

        try:
            fuzz()
        except Exception as err:  # noqa: BLE001  (every operation is fuzzed; all are reported)
            failures.append(f"{operation.label}: {err}")
    assert failures == [], "\n\n".join(failures)


def test_the_server_still_serves_after_fuzzing(live_server: str) -> None:
    session = requests.Session()
    image_id = _upload(session, live_server, "after.png")
    prompt = {"points": [[5, 5]], "labels": [1]}
    answer = session.post(f"{live_server}/api/images/{image_id}/segment", json=prompt)
    assert answer.status_code == 200 and answer.json()["masks"]
    assert session.get(f"{live_server}/api/info").status_code == 200
