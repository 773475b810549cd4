"""Meta's SAM 3 image API on tijeras: one import changed.

from tijeras.sam3 import build_sam3_image_model, Sam3Processor   # was: from sam3 ...

model = build_sam3_image_model(checkpoint_path="sam3.pt")
processor = Sam3Processor(model, confidence_threshold=0.5)
state = processor.set_image(image)
state = processor.set_text_prompt("tomato", state)     # state["masks"], ["boxes"], ["scores"]
state = processor.add_geometric_prompt([0.5, 0.5, 0.2, 0.3], False, state)
"""

from .build import build_sam3_image_model
from .processor import Sam3Processor

__all__ = ["Sam3Processor", "build_sam3_image_model"]
