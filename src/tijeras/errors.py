"""Errors that name the user's mistake. The CLI and server print them as one line."""

from __future__ import annotations


class TijerasError(Exception):
    """Base class of every error caused by input (a file, a prompt, a name), not by a bug."""


class CheckpointError(TijerasError):
    """A checkpoint file is missing, unreadable, truncated or of another model."""


class ImageError(TijerasError):
    """An image cannot be read or has an unsupported layout."""


class ImageTooLargeError(ImageError):
    """An image with more pixels than allowed (a decompression bomb, or over a set limit)."""


class PromptError(TijerasError):
    """A point, box or mask prompt is malformed or outside the image."""


class DownloadError(TijerasError):
    """A model file could not be fetched or failed its integrity check."""


class UnknownModelError(TijerasError, KeyError):
    """No registered model has this name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DatasetError(TijerasError):
    """An evaluation or training dataset is missing files or holds masks that do not fit."""
