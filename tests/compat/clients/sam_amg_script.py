"""A command-line program in the style of Meta's ``scripts/amg.py``: everything mode over an
image or a folder, each image's masks written as PNGs with a ``metadata.csv``, or all of them
as COCO RLEs in a JSON file."""

import argparse
import json
import os

import cv2
from segment_anything import SamAutomaticMaskGenerator, sam_model_registry

parser = argparse.ArgumentParser(description="Masks for every object of the input images.")
parser.add_argument("--input", required=True, help="An image or a folder of images.")
parser.add_argument("--output", required=True, help="The folder the masks are written to.")
parser.add_argument("--model-type", default="vit_h")
parser.add_argument("--checkpoint", required=True)
parser.add_argument("--device", default="cpu")
parser.add_argument("--convert-to-rle", action="store_true")
settings = parser.add_argument_group("generator settings")
settings.add_argument("--points-per-side", type=int, default=None)
settings.add_argument("--points-per-batch", type=int, default=None)
settings.add_argument("--pred-iou-thresh", type=float, default=None)
settings.add_argument("--stability-score-thresh", type=float, default=None)
settings.add_argument("--stability-score-offset", type=float, default=None)
settings.add_argument("--box-nms-thresh", type=float, default=None)
settings.add_argument("--crop-n-layers", type=int, default=None)
settings.add_argument("--crop-nms-thresh", type=float, default=None)
settings.add_argument("--crop-n-points-downscale-factor", type=int, default=None)
settings.add_argument("--min-mask-region-area", type=int, default=None)

SETTINGS = (
    "points_per_side",
    "points_per_batch",
    "pred_iou_thresh",
    "stability_score_thresh",
    "stability_score_offset",
    "box_nms_thresh",
    "crop_n_layers",
    "crop_nms_thresh",
    "crop_n_points_downscale_factor",
    "min_mask_region_area",
)


def write_masks(masks, folder):
    header = (
        "id,area,bbox_x0,bbox_y0,bbox_w,bbox_h,point_input_x,point_input_y,"
        "predicted_iou,stability_score,crop_box_x0,crop_box_y0,crop_box_w,crop_box_h"
    )
    rows = [header]
    for i, record in enumerate(masks):
        cv2.imwrite(os.path.join(folder, f"{i}.png"), record["segmentation"] * 255)
        values = [
            i,
            record["area"],
            *record["bbox"],
            *record["point_coords"][0],
            record["predicted_iou"],
            record["stability_score"],
            *record["crop_box"],
        ]
        rows.append(",".join(str(v) for v in values))
    with open(os.path.join(folder, "metadata.csv"), "w") as f:
        f.write("\n".join(rows))


def main(argv=None):
    args = parser.parse_args(argv)
    sam = sam_model_registry[args.model_type](checkpoint=args.checkpoint)
    _ = sam.to(device=args.device)
    output_mode = "coco_rle" if args.convert_to_rle else "binary_mask"
    kwargs = {k: getattr(args, k) for k in SETTINGS if getattr(args, k) is not None}
    generator = SamAutomaticMaskGenerator(sam, output_mode=output_mode, **kwargs)

    if os.path.isdir(args.input):
        targets = sorted(os.path.join(args.input, f) for f in os.listdir(args.input))
    else:
        targets = [args.input]
    os.makedirs(args.output, exist_ok=True)
    for t in targets:
        image = cv2.imread(t)
        if image is None:
            print(f"Could not load '{t}' as an image, skipping...")
            continue
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        masks = generator.generate(image)
        base = os.path.splitext(os.path.basename(t))[0]
        if output_mode == "binary_mask":
            folder = os.path.join(args.output, base)
            os.makedirs(folder, exist_ok=True)
            write_masks(masks, folder)
        else:
            with open(os.path.join(args.output, base + ".json"), "w") as f:
                json.dump(masks, f)
    return 0
