"""Vector layers in the raster's CRS: one feature per object, written through GDAL (pyogrio).

A :class:`GeoLayer` holds frozen :class:`GeoFeature` records (a shapely Polygon or
MultiPolygon in the raster's CRS and the object's numbers) and the
:class:`~tijeras.geo.reference.GeoReference` of the raster they came from.
:meth:`GeoLayer.write` picks the format from the file's suffix: ``.gpkg`` (GeoPackage),
``.geojson`` / ``.json`` (GeoJSON, with the raster's CRS named in it) or ``.shp`` (Shapefile
and its ``.shx``, ``.dbf``, ``.prj``, ``.cpg``). Files are written under a temporary name and
renamed when complete, so a failed run never leaves half a layer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import GeoError, require
from .reference import GeoReference

__all__ = ["VECTOR_SUFFIXES", "GeoFeature", "GeoLayer", "vector_driver"]

VECTOR_SUFFIXES = {
    ".gpkg": "GPKG",
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".shp": "ESRI Shapefile",
}
"""Output suffixes and the GDAL driver of each."""

_SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")


@dataclass(frozen=True)
class GeoFeature:
    """One object on the map.

    Attributes:
        geometry: shapely Polygon or MultiPolygon in the layer's CRS (holes kept).
        id: 1-based, in the layer's order.
        score: the model's predicted IoU of the mask.
        stability: stability score (everything mode), or None.
        area: area of the object's pixels, in the CRS's units squared.
        area_m2: the same in square metres (geodesic for a geographic CRS), None without CRS.
        area_px: the object's pixel count.
    """

    geometry: Any
    id: int
    score: float
    stability: float | None
    area: float
    area_m2: float | None
    area_px: int

    def properties(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "score": round(self.score, 6),
            "stability": None if self.stability is None else round(self.stability, 6),
            "area": self.area,
            "area_m2": self.area_m2,
            "area_px": self.area_px,
        }


@dataclass(frozen=True)
class GeoLayer:
    """Features in the CRS of ``reference``."""

    features: tuple[GeoFeature, ...]
    reference: GeoReference

    def __len__(self) -> int:
        return len(self.features)

    def to_geojson(self) -> dict[str, Any]:
        """A GeoJSON FeatureCollection (a dict) in the raster's CRS, named in ``crs``."""
        shapely = require("shapely")
        collection: dict[str, Any] = {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "id": f.id,
                    "properties": f.properties(),
                    "geometry": shapely.geometry.mapping(f.geometry),
                }
                for f in self.features
            ],
        }
        if self.reference.crs_wkt is not None:
            collection["crs"] = {
                "type": "name",
                "properties": {"name": _crs_urn(self.reference.crs_name)},
            }
        return collection

    def write(self, path: str | Path) -> Path:
        """Write the layer; the format follows the suffix (see :data:`VECTOR_SUFFIXES`)."""
        target = Path(path)
        driver = vector_driver(target)
        if not target.parent.is_dir():
            raise GeoError(f"cannot write {target}: folder {target.parent} does not exist")
        temp = target.with_name(f".{target.stem}.{os.getpid()}.tmp{target.suffix}")
        try:
            self._write(temp, driver, target.stem)
            for suffix in _parts(driver, target.suffix):
                part = temp.with_suffix(suffix)
                if part.exists():
                    os.replace(part, target.with_suffix(suffix))
        finally:
            for suffix in _parts(driver, target.suffix):
                temp.with_suffix(suffix).unlink(missing_ok=True)
        return target

    def _write(self, path: Path, driver: str, name: str) -> None:
        pyogrio = require("pyogrio")
        shapely = require("shapely")
        geometries = [f.geometry for f in self.features]
        multi = any(g.geom_type == "MultiPolygon" for g in geometries)
        wkb = (
            np.array(shapely.to_wkb(geometries), dtype=object)
            if geometries
            else np.array([], dtype=object)
        )
        columns = {
            "id": np.array([f.id for f in self.features], np.int64),
            "score": np.array([f.score for f in self.features], np.float64),
            "stability": _floats([f.stability for f in self.features]),
            "area": np.array([f.area for f in self.features], np.float64),
            "area_m2": _floats([f.area_m2 for f in self.features]),
            "area_px": np.array([f.area_px for f in self.features], np.int64),
        }
        try:
            pyogrio.raw.write(
                str(path),
                wkb,
                list(columns.values()),
                list(columns),
                layer=name,
                driver=driver,
                geometry_type="MultiPolygon" if multi else "Polygon",
                promote_to_multi=True if multi else None,
                crs=self.reference.crs_wkt,
            )
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
            raise GeoError(f"cannot write {path.name} ({driver}): {exc}") from exc


def vector_driver(path: Path) -> str:
    """The GDAL driver for an output path, or a GeoError naming the suffixes known."""
    driver = VECTOR_SUFFIXES.get(path.suffix.lower())
    if driver is None:
        raise GeoError(
            f"{path.name}: unknown vector format {path.suffix!r}; use one of "
            f"{', '.join(VECTOR_SUFFIXES)}"
        )
    return driver


def _parts(driver: str, suffix: str) -> tuple[str, ...]:
    """The files a layer of ``driver`` is made of (their suffixes)."""
    return _SHAPEFILE_PARTS if driver == "ESRI Shapefile" else (suffix,)


def _floats(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], np.float64)


def _crs_urn(name: str) -> str:
    if name.startswith("EPSG:"):
        return f"urn:ogc:def:crs:EPSG::{name[5:]}"
    return name
