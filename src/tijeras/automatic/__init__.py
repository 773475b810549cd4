"""Everything mode: automatic mask generation over a grid of point prompts."""
