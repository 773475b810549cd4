"""The one place SAM 3 imports tijeras' checkpoint-file functions from."""

from __future__ import annotations

from ...hub.checkpoint import load_state_dict_file, load_state_dict_into

__all__ = ["load_state_dict_file", "load_state_dict_into"]
