"""The model families, one folder each, behind the contract of :mod:`tijeras.contract`.

``blocks/`` holds the layers several families share (SAM's prompt encoder, the two-way
transformer, the mask decoder and its fast evaluation). A family imports ``blocks`` and the
infrastructure of :mod:`tijeras.hub`, never another family. This package imports nothing, so
``import tijeras.models.sam`` loads SAM alone; :mod:`tijeras.catalog` lists the families.
"""
