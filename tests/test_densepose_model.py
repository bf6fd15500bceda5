"""The plain-PyTorch DensePose R-CNN against detectron2's own outputs (../shared/fixtures/densepose-tiny).

Layer checks feed each stage the golden input of that stage (the stored resized image, the stored
RPN proposals, the stored final boxes), so a mismatch points at one module. End-to-end checks
run the public API on the original 512x512 images at both stored thresholds.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from densepose_goldens import CASES, THRESHOLDS, case, densepose_weights, extractor, rel_err  # noqa: F401

from magicanimate.densepose.backbone import FPN
from magicanimate.densepose.rcnn import BOX_LEVELS
from magicanimate.densepose.preprocess import resize_image, to_network_input
from magicanimate.io.densepose_colors import part_colors

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@functools.lru_cache(maxsize=2)
def _layers(weights, name: str) -> dict[str, object]:
    """Every stage's output for one case, each stage fed the golden input of that stage."""
    model = extractor(weights).model
    g = case(name)
    with torch.inference_mode():
        batch, sizes = to_network_input([g["input_rgb"]])
        features = model.backbone(batch)
        proposals, logits = model.proposal_generator([features[k] for k in FPN.levels], sizes,
                                                     strides=FPN.strides)[0]
        box_features = [features[k] for k in BOX_LEVELS]
        cls_logits, deltas = model.roi_heads.box_outputs(box_features, [torch.from_numpy(g["rpn_proposals"])])
        decoded = model.roi_heads.decoder(box_features)
        charts = model.roi_heads.densepose(box_features, [torch.from_numpy(g["t080_boxes_input"])])
    return dict(batch=batch, sizes=sizes, features=features, proposals=proposals, logits=logits,
                cls_logits=cls_logits, deltas=deltas, decoded=decoded, charts=charts)


@pytest.fixture(params=CASES)
def layers(request, densepose_weights):  # noqa: F811
    return case(request.param), _layers(densepose_weights, request.param)


# --------------------------------------------------------------------------
# Layer by layer
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_resize_and_padding_match_detectron2(name: str) -> None:
    g = case(name)
    np.testing.assert_array_equal(resize_image(g["image_rgb"], tuple(g["input_size"])), g["input_rgb"])
    batch, sizes = to_network_input([g["input_rgb"]])
    assert sizes == [tuple(g["input_size"])] and tuple(batch.shape[-2:]) == tuple(g["padded_size"])


def test_fpn_levels(layers) -> None:
    g, out = layers
    for level in ("p2", "p3", "p4", "p5", "p6"):
        feature = out["features"][level][0].numpy()
        assert feature.shape == tuple(g[f"fpn_{level}_shape"])
        assert rel_err(feature[0], g[f"fpn_{level}_ch0"]) < 1e-5, level
        assert rel_err(feature.mean(axis=(1, 2)), g[f"fpn_{level}_chmean"]) < 1e-5, level
        std = torch.from_numpy(feature).flatten(1).std(dim=1).numpy()  # torch's unbiased std, as stored
        assert rel_err(std, g[f"fpn_{level}_chstd"]) < 1e-5, level


def test_decoder(layers) -> None:
    g, out = layers
    decoded = out["decoded"][0]
    assert tuple(decoded.shape) == tuple(g["decoder_shape"])
    assert rel_err(decoded.mean(dim=(1, 2)).numpy(), g["decoder_chmean"]) < 1e-5
    assert rel_err(decoded.flatten(1).std(dim=1).numpy(), g["decoder_chstd"]) < 1e-5


def test_rpn_proposals(layers) -> None:
    """Same proposals and logits; the order may differ only between near-equal logits (float rounding)."""
    g, out = layers
    proposals, logits = out["proposals"].numpy(), out["logits"].numpy()
    assert proposals.shape == g["rpn_proposals"].shape
    distance = np.abs(g["rpn_proposals"][:, None, :] - proposals[None, :, :]).max(axis=-1)  # (golden, ours)
    match = distance.argmin(axis=1)
    assert len(set(match.tolist())) == len(match)  # one-to-one
    assert rel_err(proposals[match], g["rpn_proposals"]) < 1e-5
    assert rel_err(logits[match], g["rpn_logits"]) < 1e-5
    moved = np.nonzero(match != np.arange(len(match)))[0]
    assert len(moved) <= 4, moved  # dalle2: one swapped pair (logits 9.524938 / 9.524914)
    assert np.abs(g["rpn_logits"][moved] - g["rpn_logits"][match[moved]]).max(initial=0) < 1e-4


def test_box_head_outputs(layers) -> None:
    g, out = layers
    assert rel_err(out["cls_logits"].numpy(), g["box_cls_logits"]) < 1e-5
    assert rel_err(out["deltas"].numpy(), g["box_deltas"]) < 1e-5


def test_densepose_predictor_outputs(layers) -> None:
    g, out = layers
    charts = out["charts"]
    n = len(g["t080_boxes_input"])
    assert rel_err(charts.coarse_segm[: min(n, 2)].numpy(), g["t080_dp_coarse_segm_inst01"]) < 1e-5
    assert rel_err(charts.fine_segm[:1].numpy(), g["t080_dp_fine_segm_inst0"]) < 1e-5
    for key, tensor in (("u", charts.u), ("v", charts.v)):
        np.testing.assert_allclose(tensor[:1].numpy(), g[f"t080_dp_{key}_inst0_f16"].astype(np.float32),
                                   atol=2e-3, rtol=1e-3)
    for key in ("coarse_segm", "fine_segm", "u", "v"):
        assert rel_err(getattr(charts, key).mean(dim=(2, 3)).numpy(), g[f"t080_dp_{key}_chmean"]) < 1e-5, key
    assert (charts.coarse_segm.argmax(dim=1).numpy() == g["t080_dp_coarse_argmax"]).mean() > 0.9999
    assert (charts.fine_segm.argmax(dim=1).numpy() == g["t080_dp_fine_argmax"]).mean() > 0.9999


# --------------------------------------------------------------------------
# End to end, public API
# --------------------------------------------------------------------------


def _check_end_to_end(weights, name: str, prefix: str) -> None:
    g = case(name)
    out = extractor(weights)(g["image_rgb"], min_score=THRESHOLDS[prefix])
    boxes, scores = out.boxes[0], out.scores[0]
    assert boxes.dtype == np.float32 and scores.dtype == np.float32
    assert boxes.shape == g[f"{prefix}_boxes"].shape
    assert rel_err(boxes, g[f"{prefix}_boxes"]) < 1e-5  # golden boxes are up to 512 px: < 5e-3 px
    assert np.abs(scores - g[f"{prefix}_scores"]).max() < 1e-5
    assert out.labels.shape == g[f"{prefix}_labels"].shape and out.labels.dtype == np.uint8
    assert (out.labels == g[f"{prefix}_labels"]).mean() >= 0.999
    assert (out.render() == g[f"{prefix}_render_rgb"]).all(axis=-1).mean() >= 0.999


@pytest.mark.parametrize("name", CASES)
def test_end_to_end_min_score_080(densepose_weights, name: str) -> None:  # noqa: F811
    _check_end_to_end(densepose_weights, name, "t080")


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_end_to_end_min_score_005(densepose_weights, name: str) -> None:  # noqa: F811
    """100 detections per image (the cap): exercises top-k, heavy overlap and the drawing order."""
    _check_end_to_end(densepose_weights, name, "t005")


@pytest.mark.parametrize("name", CASES)
def test_part_colours_are_the_goldens_dp_segm_colours(name: str) -> None:
    g = case(name)
    for prefix in THRESHOLDS:
        np.testing.assert_array_equal(part_colors()[g[f"{prefix}_labels"]], g[f"{prefix}_render_rgb"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_cuda_runs_close_to_detectron2(densepose_weights, dtype: torch.dtype) -> None:  # noqa: F811
    """CUDA (cuDNN may use TF32) and half precision: same people found, labels mostly equal (not bit-exact)."""
    from magicanimate.densepose import DensePoseExtractor

    ex = DensePoseExtractor.from_pretrained(densepose_weights, device="cuda", dtype=dtype)
    g = case("monalisa")
    out = ex(np.stack([g["image_rgb"]] * 2), 0.8, batch_size=2)
    for boxes in out.boxes:
        assert abs(len(boxes) - len(g["t080_boxes"])) <= (0 if dtype == torch.float32 else 1)
    tolerance = 0.99 if dtype == torch.float32 else 0.9
    assert (out.labels == g["t080_labels"]).mean() >= tolerance
