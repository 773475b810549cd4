"""Infrastructure shared by every model family: the registry, checkpoint files and downloads.

Nothing here imports a family; :mod:`tijeras.catalog` fills the registry from above.
"""
