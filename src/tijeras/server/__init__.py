"""The web app: a FastAPI server and the page it serves (``tijeras serve``)."""
