"""``sam2.utils``: ``transforms``, ``amg`` and ``misc``."""
