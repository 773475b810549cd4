"""Everything mode on a GeoTIFF: one polygon per object across tile borders, in the CRS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rasterio")
pytest.importorskip("shapely")
pytest.importorskip("pyogrio")

import pyogrio
import rasterio
import shapely
from geo.stub import BlobGenerator, Records, write_geotiff
from rasterio import features as rio_features

from tijeras.automatic.frames import encode_mask
from tijeras.geo import GeoError, everything


def _raster_mask(geometry, path: Path) -> np.ndarray:
    """Pixels of the raster at ``path`` whose centres fall in ``geometry``."""
    with rasterio.open(path) as dataset:
        shape, transform = (dataset.height, dataset.width), dataset.transform
    return rio_features.rasterize([(geometry, 1)], out_shape=shape, transform=transform) > 0


def _match(layer, truth: dict, path: Path) -> dict:
    """Truth name -> features whose pixels overlap it."""
    found: dict[str, list] = {name: [] for name in truth}
    for feature in layer.features:
        pixels = _raster_mask(feature.geometry, path)
        for name, mask in truth.items():
            if (pixels & mask).any():
                found[name].append((feature, pixels))
    return found


def test_every_object_is_one_polygon_with_exactly_its_pixels(scene, blobs) -> None:
    path, truth = scene
    layer = everything(path, blobs, tile_size=1024, overlap=256)
    assert blobs.tiles == 9
    assert len(layer) == len(truth), [f.area_px for f in layer.features]
    for name, matches in _match(layer, truth, path).items():
        assert len(matches) == 1, f"{name}: {len(matches)} polygons"
        feature, pixels = matches[0]
        assert feature.geometry.geom_type == "Polygon" and feature.geometry.is_valid, name
        assert np.array_equal(pixels, truth[name]), name
        assert feature.area_px == truth[name].sum()
        assert feature.area == pytest.approx(truth[name].sum() * 0.25)  # 0.5 m pixels
        assert feature.area_m2 == pytest.approx(feature.area)


def test_holes_kept_and_coordinates_in_the_raster_crs(scene, blobs) -> None:
    path, _ = scene
    layer = everything(path, blobs, tile_size=1024, overlap=256)
    big = max(layer.features, key=lambda f: f.area_px)
    assert len(big.geometry.interiors) == 1
    hole = shapely.Polygon(big.geometry.interiors[0])
    assert hole.area == pytest.approx(100 * 60 * 0.25)
    small = next(f for f in layer.features if f.area_px == 250 * 250)
    # pixels 50..300 of a raster whose corner is (430000, 4582000), 0.5 m pixels, north up
    assert small.geometry.bounds == pytest.approx((430025.0, 4581850.0, 430150.0, 4581975.0))
    assert layer.reference.crs_name == "EPSG:32631"
    assert [f.id for f in layer.features] == list(range(1, len(layer) + 1))


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".shp"])
def test_written_layers_keep_the_crs_and_fields(scene, blobs, tmp_path: Path, suffix: str) -> None:
    path, truth = scene
    layer = everything(path, blobs, tile_size=1024, overlap=256)
    out = layer.write(tmp_path / f"objects{suffix}")
    info = pyogrio.read_info(out)
    assert info["crs"] == "EPSG:32631"
    assert info["features"] == len(truth)
    assert list(info["fields"]) == ["id", "score", "stability", "area", "area_m2", "area_px"]
    table = pyogrio.read_dataframe(out) if _has_geopandas() else None
    if table is not None:
        assert sorted(table["area_px"]) == sorted(int(m.sum()) for m in truth.values())
    left = sorted(p.name for p in tmp_path.iterdir())
    expected = [
        "objects" + s
        for s in ((".cpg", ".dbf", ".prj", ".shp", ".shx") if suffix == ".shp" else (suffix,))
    ]
    assert left == expected  # no temporary file left behind


def _has_geopandas() -> bool:
    try:
        import geopandas  # noqa: F401
    except ImportError:
        return False
    return True


def test_unknown_vector_suffix_is_named(scene, blobs, tmp_path: Path) -> None:
    path, _ = scene
    layer = everything(path, blobs, tile_size=1024, overlap=256)
    with pytest.raises(GeoError, match=r"objects\.kml: unknown vector format '\.kml'"):
        layer.write(tmp_path / "objects.kml")


def test_nodata_is_cut_out_and_all_nodata_tiles_are_skipped(tmp_path: Path) -> None:
    image = np.full((600, 1500), 7, np.uint8)  # one object covering the raster ...
    image[:, 1000:] = 255  # ... whose right part is nodata
    path = write_geotiff(tmp_path / "nodata.tif", image, nodata=255)
    stub = BlobGenerator()
    layer = everything(path, stub, tile_size=500, overlap=100)
    # 8 tiles (columns start at 0, 333, 667, 1000); the 2 at x >= 1000 are all nodata
    assert stub.tiles == 6
    assert len(layer) == 1
    assert layer.features[0].area_px == 600 * 1000


def test_float_nan_is_nodata(tmp_path: Path) -> None:
    data = np.full((300, 300), 20.0, np.float32)
    data[100:200, 100:200] = 50.0
    data[:, 30:60] = 0.0  # valid, the darkest value: background for the stub
    data[:, :30] = np.nan
    path = write_geotiff(tmp_path / "sar.tif", data)
    layer = everything(path, BlobGenerator(), stretch=(0, 100))
    areas = sorted(f.area_px for f in layer.features)
    assert areas == [100 * 100, 300 * 240 - 100 * 100]


class Overlapping:
    """One tile; masks given by the test (rows of a 100 x 200 raster)."""

    output_mode = "coco_rle"

    def __init__(self, masks: list[np.ndarray]) -> None:
        self.masks = masks

    def generate_records(self, tile: np.ndarray) -> Records:
        boxes = []
        for m in self.masks:
            ys, xs = np.nonzero(m)
            boxes.append([xs.min(), ys.min(), xs.max(), ys.max()])
        n = len(self.masks)
        return Records(
            rles=[encode_mask(m) for m in self.masks],
            iou=np.linspace(0.9, 0.8, n),
            stability=np.full(n, 0.96),
            points=np.zeros((n, 2)),
            boxes=np.asarray(boxes, np.int64),
        )


def _two_fields_and_a_barn() -> list[np.ndarray]:
    left = np.zeros((100, 200), bool)
    left[10:90, 10:98] = True  # a field ...
    right = np.zeros((100, 200), bool)
    right[10:90, 100:190] = True  # ... a 2-pixel gap, then its neighbour
    barn = np.zeros((100, 200), bool)
    barn[40:60, 120:140] = True  # a barn inside the right field (overlaps it)
    return [left, right, barn]


def test_coverage_closes_gaps_and_removes_overlaps(tmp_path: Path) -> None:
    path = write_geotiff(tmp_path / "fields.tif", np.zeros((100, 200), np.uint8))
    masks = _two_fields_and_a_barn()
    plain = everything(path, Overlapping(masks))
    left, right, barn = (f.geometry for f in plain.features)
    assert right.intersection(barn).area > 0  # everything mode: the barn overlaps the field
    assert left.distance(right) == pytest.approx(1.0)  # 2 pixels of 0.5 m
    layer = everything(path, Overlapping(masks), coverage=True)
    left, right, barn = (f.geometry for f in layer.features)
    for a, b in ((left, right), (left, barn), (right, barn)):
        assert a.intersection(b).area == pytest.approx(0.0)
    assert left.intersection(right).length == pytest.approx(80 * 0.5)  # a shared edge
    assert barn.area == pytest.approx(20 * 20 * 0.25)  # the smaller object stays whole
    assert len(right.interiors) == 1  # the field has a hole where the barn is
    total = 80 * 180 * 0.25  # both fields and the 2-pixel gap between them
    assert shapely.union_all([left, right, barn]).area == pytest.approx(total)
    assert [f.area_px for f in layer.features] == [80 * 89, 80 * 91 - 400, 400]


def test_coverage_leaves_open_ground_and_wide_gaps(tmp_path: Path) -> None:
    path = write_geotiff(tmp_path / "fields.tif", np.zeros((100, 200), np.uint8))
    left, right, _ = _two_fields_and_a_barn()
    wide = np.zeros_like(right)
    wide[10:90, 110:190] = True  # 12 pixels away
    layer = everything(path, Overlapping([left, wide]), coverage=True, gap=3)
    a, b = (f.geometry for f in layer.features)
    assert a.distance(b) == pytest.approx(12 * 0.5)
    assert [f.area_px for f in layer.features] == [80 * 88, 80 * 80]


def test_simplified_coverage_keeps_shared_edges(tmp_path: Path) -> None:
    path = write_geotiff(tmp_path / "fields.tif", np.zeros((400, 400), np.uint8))
    yy, xx = np.mgrid[0:400, 0:400]
    blob = (xx - 200) ** 2 + (yy - 200) ** 2 <= 150**2
    left, right = blob & (xx < 200 + (yy % 7 > 3)), blob & (xx >= 201 + (yy % 7 > 3))
    layer = everything(path, Overlapping([left, right]), coverage=True, simplify=2.0)
    a, b = (f.geometry for f in layer.features)
    assert a.is_valid and b.is_valid
    assert a.intersection(b).area == pytest.approx(0.0, abs=1e-6)
    assert a.intersection(b).length > 100  # still one shared boundary after simplification
    exact = everything(path, Overlapping([left, right]), coverage=True)
    assert shapely.get_num_coordinates(a) < shapely.get_num_coordinates(exact.features[0].geometry)


def test_negative_simplify_is_refused(scene, blobs) -> None:
    path, _ = scene
    with pytest.raises(GeoError, match="simplify must be >= 0"):
        everything(path, blobs, simplify=-1.0)


def test_a_cloud_optimised_geotiff_is_read_like_any_geotiff(scene, tmp_path: Path) -> None:
    path, truth = scene
    cog = tmp_path / "scene_cog.tif"
    with rasterio.open(path) as source:
        profile = {**source.profile, "driver": "COG", "compress": "deflate"}
        for key in ("tiled", "blockxsize", "blockysize", "interleave"):
            profile.pop(key, None)
        with rasterio.open(cog, "w", **profile) as target:
            target.write(source.read())
    with rasterio.open(cog) as dataset:
        assert dataset.overviews(1)  # the COG driver built overviews
    layer = everything(cog, BlobGenerator(), tile_size=1024, overlap=256)
    assert sorted(f.area_px for f in layer.features) == sorted(int(m.sum()) for m in truth.values())
