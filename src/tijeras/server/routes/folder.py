"""``tijeras serve --folder DIR``: the folder's listing, opening one of its images, and
writing the COCO file of the whole folder (only when asked)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from ..folder import CocoFileExistsError, Folder, FolderError
from ..schemas import FolderCocoRequest, FolderOpenRequest
from .common import hold_image, status_json

router = APIRouter(tags=["folder"])


def _folder(request: Request) -> Folder:
    folder = request.app.state.folder
    if folder is None:
        raise HTTPException(404, "no folder is served (start the server with --folder DIR)")
    return folder


@router.get("/folder")
def listing(request: Request) -> dict[str, Any]:
    """The served folder's images, in order, with how many objects each has (null: not
    opened yet)."""
    return _folder(request).summary()


@router.get("/folder/files/{name}")
def file_bytes(request: Request, name: str) -> FileResponse:
    """The bytes of one of the folder's images (for the page to show it)."""
    try:
        return FileResponse(_folder(request).file(name))
    except FolderError as err:
        raise HTTPException(404, str(err)) from None


@router.post("/folder/open", status_code=201)
async def open_file(request: Request, body: FolderOpenRequest) -> dict[str, Any]:
    """Open one of the folder's images (read from the disk; the same checks as an upload).

    An image already open is answered as it is; one opened before gets its objects back."""
    folder = _folder(request)
    try:
        path = folder.file(body.name)
    except FolderError as err:
        raise HTTPException(404, str(err)) from None
    held = request.app.state.store.find_folder_file(body.name)
    if held is not None:
        return status_json(request, held)
    limit = request.app.state.settings.max_upload_bytes
    size = path.stat().st_size
    if size > limit:
        raise HTTPException(413, f"{body.name} is {size} bytes; the limit is {limit}")
    data = await run_in_threadpool(path.read_bytes)
    entry = await hold_image(request, data, body.name, folder_file=body.name)
    return status_json(request, entry)


@router.post("/folder/coco")
def write_coco(request: Request, body: FolderCocoRequest) -> dict[str, Any]:
    """Write the COCO file of every folder image opened so far, with its kept objects, to a
    ``.json`` path inside the folder. An existing file is replaced only with ``overwrite``."""
    try:
        return _folder(request).write_coco(body.path, body.segmentation, body.overwrite)
    except CocoFileExistsError as err:
        raise HTTPException(409, str(err)) from None
    except FolderError as err:
        raise HTTPException(422, str(err)) from None
