"""DensePose motion from ordinary videos: detectron2's ``densepose_rcnn_R_50_FPN_s1x`` in plain PyTorch.

    from magicanimate.densepose import DensePoseExtractor, extract_motion
    extractor = DensePoseExtractor.from_pretrained()          # model_final_162be9.pkl (cached download)
    out = extractor(frames, min_score=0.8)                    # uint8 RGB (H, W, 3) or (F, H, W, 3)
    out.labels, out.boxes, out.scores, out.render()
    labels = extract_motion(frames, extractor=extractor, people="track", smooth=5, align_to=reference)
"""

from magicanimate.densepose.align import Alignment, align_motion, apply_alignment, fit_alignment
from magicanimate.densepose.safe_pickle import check_densepose_weights
from magicanimate.densepose.extractor import DEFAULT_MIN_SCORE, DensePoseExtractor, DensePoseOutput, FrameDetections
from magicanimate.densepose.extraction import compose_motion, extract_motion
from magicanimate.densepose.people import PEOPLE_MODES, select_people
from magicanimate.densepose.temporal import label_flicker, smooth_labels
from magicanimate.densepose.download import FILENAME, LICENSE, URL, densepose_weights_path, download_densepose_weights

__all__ = [
    "DEFAULT_MIN_SCORE", "FILENAME", "LICENSE", "PEOPLE_MODES", "URL", "Alignment", "DensePoseExtractor",
    "DensePoseOutput", "FrameDetections", "align_motion", "apply_alignment", "check_densepose_weights", "compose_motion",
    "densepose_weights_path", "download_densepose_weights", "extract_motion", "fit_alignment",
    "label_flicker", "select_people", "smooth_labels",
]
