"""Errors a video user can cause: a file that is not a video, a frame or object that does not
exist, a prompt outside the frame, a request for memories that were released.

Each is a :class:`~tijeras.errors.TijerasError` (the CLI prints it as one ``error:`` line) and
also the built-in exception Meta's predictor raises in the same situation, so code written
against Meta's package keeps catching it.
"""

from __future__ import annotations

from ..errors import PromptError, TijerasError


class VideoError(TijerasError, RuntimeError):
    """A video or frame folder cannot be read, or a frame index is out of range."""


class FrameIndexError(VideoError, IndexError):
    """A frame index outside the video."""


class VideoPromptError(PromptError, ValueError):
    """A point, box or mask prompt on a video frame is malformed or outside the frame."""


class TrackingError(TijerasError, RuntimeError):
    """Tracking cannot run as asked (no prompts yet, an unknown object, released memories)."""
