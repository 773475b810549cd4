"""Defaults shared by the library, the command line and the web app (no heavy imports here)."""

DEFAULT_MODEL = "mobile-sam"
"""The model the CLI, the web app and ``load_model`` use when none is named (see the README)."""
