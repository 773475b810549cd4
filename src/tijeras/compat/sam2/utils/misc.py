"""``sam2.utils.misc``: ``get_connected_components``, computed on any device (Meta's needs
its CUDA extension)."""

from tijeras.models.sam2.holes import connected_components as get_connected_components

__all__ = ["get_connected_components"]
