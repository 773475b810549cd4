"""Videos in the web app: held in memory, prompted on any frame, tracked with SAM 2.

A video is its uploaded bytes and what derives from them: two frame sources decoding those
bytes lazily from memory (one for the tracker, one for the frames the page shows, so scrubbing
never waits for a propagation), the tracker's :class:`~tijeras.video.state.VideoState`, and
every frame's masks as compressed COCO RLEs. Nothing touches the disk, except the overlay MP4:
OpenCV's encoder writes only to a path, so it is encoded into a file of the RAM file system
(``/dev/shm``), read back and removed at once (see :func:`scratch_folder`).

Model work on a video (prompts, hover, the propagation) holds the video's ``lock``; a
propagation runs on the heavy queue, reports frames done and frames per second, and can be
stopped. Videos are bounded in number (``max_videos``; a new one is refused, never evicting
another's work), in upload size, frames, duration and pixels, and forgotten after ``ttl``
seconds without a request or when closed.

    entry.py    VideoEntry, VideoStore, opening uploaded bytes within the limits
    model.py    VideoModels: the SAM 2 tracker, loaded on first use
    work.py     prompts on a frame, hover, the tracking job
    files.py    frames as JPEG, the overlay MP4, the masks JSON, the palette PNGs
"""

from __future__ import annotations

from .entry import (
    MAX_OBJECTS,
    VideoBusyError,
    VideoEntry,
    VideoLimitError,
    VideoModelError,
    VideoStore,
    colour,
    describe,
    open_video,
)
from .files import frame_jpeg, masklets_json, overlay_mp4, palette_zip, scratch_folder
from .model import VideoModels
from .work import frame_masks, hover, prompt, remove_object, start_tracking, stop_tracking

__all__ = [
    "MAX_OBJECTS",
    "VideoBusyError",
    "VideoEntry",
    "VideoLimitError",
    "VideoModelError",
    "VideoModels",
    "VideoStore",
    "colour",
    "describe",
    "frame_jpeg",
    "frame_masks",
    "hover",
    "masklets_json",
    "open_video",
    "overlay_mp4",
    "palette_zip",
    "prompt",
    "remove_object",
    "scratch_folder",
    "start_tracking",
    "stop_tracking",
]
