"""DensePose motion from ordinary videos: detectron2's ``densepose_rcnn_R_50_FPN_s1x`` in plain PyTorch.

    from magicanimate.densepose import DensePoseExtractor
    extractor = DensePoseExtractor.from_pretrained()          # model_final_162be9.pkl
    out = extractor(frames, min_score=0.8)                    # uint8 RGB (F, H, W, 3)
    out.labels, out.boxes, out.scores, out.render()
"""

from .extractor import DensePoseExtractor, DensePoseOutput
from .weights import download_densepose_weights, densepose_weights_path

__all__ = ["DensePoseExtractor", "DensePoseOutput", "download_densepose_weights", "densepose_weights_path"]
