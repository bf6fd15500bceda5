"""The public weight files behind the feature metrics: names, sources, cache folder, download."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from magicanimate.errors import WeightsError

ENV_VAR = "MAGICANIMATE_METRICS_DIR"
# The two Inception files FID can use: pytorch-fid's port (default) or NVIDIA's TorchScript.
INCEPTION_BACKENDS = ("pytorch-fid", "torchscript")
DEFAULT_DIR = Path("~/.cache/magicanimate/metrics")


@dataclass(frozen=True)
class WeightFile:
    """One public weight file: where it comes from and what it is for."""

    key: str
    filename: str
    purpose: str
    source: str
    url: str | None = None
    hf_repo: str | None = None
    hf_repo_type: str | None = None
    hf_path: str | None = None
    hf_revision: str | None = None
    # Checked after a download when set: torch.hub names end in the file's sha256 prefix ("-397923af.pth").
    sha256_prefix: str | None = None
    md5: str | None = None
    optional: bool = False

    @property
    def downloadable(self) -> bool:
        """Whether `download-metrics` can fetch this file without a person's help."""
        return self.url is not None or self.hf_repo is not None


WEIGHT_FILES: dict[str, WeightFile] = {
    f.key: f
    for f in (
        WeightFile(
            key="inception",
            filename="pt_inception-2015-12-05-6726825d.pth",
            purpose="FID: InceptionV3 pool3 features (TF 2015-12-05 graph ported by pytorch-fid)",
            source="mseitzer/pytorch-fid release 'fid_weights'",
            url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
            "pt_inception-2015-12-05-6726825d.pth",
            # "6726825d" looks like a torch.hub sha256 prefix, but pytorch-fid never checks it: not enforced.
        ),
        WeightFile(
            key="vgg16",
            filename="vgg16-397923af.pth",
            purpose="LPIPS: torchvision VGG16 ImageNet trunk (only `features.*` is used)",
            source="torchvision model zoo",
            url="https://download.pytorch.org/models/vgg16-397923af.pth",
            sha256_prefix="397923af",  # torchvision itself checks this prefix (check_hash=True)
        ),
        WeightFile(
            key="lpips_vgg",
            filename="lpips_vgg_v0.1.pth",
            purpose="LPIPS: linear calibration layers lin0..lin4 (v0.1, net='vgg')",
            source="richzhang/PerceptualSimilarity lpips/weights/v0.1/vgg.pth (shipped in the `lpips` wheel)",
            url="https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth",
            # taming-transformers pins md5 d507d7349b931f0638a25a48a722f98a for its copy of this file;
            # not verified to be byte-identical to the lpips one, so not enforced.
        ),
        WeightFile(
            key="resnet3d",
            filename="resnet-50-kinetics.pth",
            purpose="FID-VID: 3D ResNet-50 (shortcut B) trained on Kinetics-400, 2048-d pooled features",
            source="kenshohara/3D-ResNets-PyTorch (2017 release, linked from "
            "kenshohara/video-classification-3d-cnn-pytorch); DisCo loads it from eval_fvd/",
        ),
        WeightFile(
            key="i3d",
            filename="i3d_pretrained_400.pt",
            purpose="FVD: I3D (Inception-v1 3D) Kinetics-400 logits, converted from the TF-Hub model by VideoGPT",
            source="wilson1yan/VideoGPT (Google Drive id 1mQK8KD8G6UWRa5t87SRMm5PVXtlpneJT); "
            "mirrored in the Hugging Face space LanguageBind/Open-Sora-Plan-v1.0.0",
            hf_repo="LanguageBind/Open-Sora-Plan-v1.0.0",
            hf_repo_type="space",
            hf_path="opensora/eval/fvd/videogpt/i3d_pretrained_400.pt",
            hf_revision="810fa8c4bdb3a4c8eec9bd57375c29bde6fb46de",
        ),
        WeightFile(
            key="inception_torchscript",
            filename="inception-2015-12-05.pt",
            purpose="FID (optional backend): the same TF Inception as a TorchScript file, used by clean-fid and DisCo",
            source="NVlabs/stylegan2-ada-pytorch metrics",
            url="https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt",
            optional=True,
        ),
    )
}


def metrics_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The weight cache folder: the argument, else $MAGICANIMATE_METRICS_DIR, else ~/.cache/magicanimate/metrics."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return DEFAULT_DIR.expanduser()


def missing_message(spec: WeightFile, path: Path) -> str:
    """The error text for a missing weight file: its name, role, expected path, fix and source."""
    how = (
        "run `magicanimate download-metrics` (needs internet)"
        if spec.downloadable
        else "download it by hand from the source below (no stable direct URL) and place it there"
    )
    return (
        f"metric weight file '{spec.filename}' ({spec.purpose}) not found at {path}. "
        f"To fix: {how}; or point --metrics-dir / ${ENV_VAR} at a folder holding it. "
        f"Source: {spec.source}" + (f" <{spec.url}>" if spec.url else "")
    )


def weight_path(key: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of the weight file `key` in the cache; WeightsError naming file, path and fix if it is absent."""
    if key not in WEIGHT_FILES:
        raise WeightsError(f"unknown metric weight '{key}'; known: {', '.join(WEIGHT_FILES)}")
    spec = WEIGHT_FILES[key]
    path = metrics_dir(cache_dir) / spec.filename
    if not path.is_file():
        raise WeightsError(missing_message(spec, path))
    return path


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_hash(spec: WeightFile, path: Path) -> None:
    """Compare a file against the hash its publisher made known (sha256 name prefix or md5)."""
    if spec.sha256_prefix is not None:
        actual = sha256_of(path)
        if not actual.startswith(spec.sha256_prefix):
            raise WeightsError(
                f"{path} has sha256 {actual}, expected one starting with {spec.sha256_prefix}: "
                "the file is corrupt or not the published one; delete it and download again"
            )
    if spec.md5 is not None:
        digest = hashlib.md5()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != spec.md5:
            raise WeightsError(
                f"{path} has md5 {digest.hexdigest()}, expected {spec.md5}; delete it and download again"
            )


def _fetch_url(url: str, dest: Path) -> None:
    with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False, suffix=".part") as tmp:
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                shutil.copyfileobj(response, tmp)
        except BaseException:
            Path(tmp.name).unlink(missing_ok=True)
            raise
    os.replace(tmp.name, dest)


def _fetch_hf(spec: WeightFile, dest: Path) -> None:
    from huggingface_hub import hf_hub_download

    cached = hf_hub_download(
        repo_id=spec.hf_repo,
        filename=spec.hf_path,
        repo_type=spec.hf_repo_type,
        revision=spec.hf_revision,
    )
    shutil.copyfile(cached, dest)


def download_weights(
    keys: list[str] | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    include_optional: bool = False,
) -> dict[str, str]:
    """Fetch the metric weight files into the cache; returns {key: 'present' | 'downloaded' | 'manual: ...'}."""
    folder = metrics_dir(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    chosen = keys if keys is not None else [k for k, s in WEIGHT_FILES.items() if include_optional or not s.optional]
    status: dict[str, str] = {}
    for key in chosen:
        if key not in WEIGHT_FILES:
            raise WeightsError(f"unknown metric weight '{key}'; known: {', '.join(WEIGHT_FILES)}")
        spec = WEIGHT_FILES[key]
        dest = folder / spec.filename
        if dest.is_file():
            status[key] = "present"
            continue
        if not spec.downloadable:
            status[key] = f"manual: {missing_message(spec, dest)}"
            continue
        try:
            if spec.url is not None:
                _fetch_url(spec.url, dest)
            else:
                _fetch_hf(spec, dest)
        except Exception as exc:  # network failures of any kind become one clear message
            raise WeightsError(f"could not download '{spec.filename}' to {dest}: {exc}") from exc
        try:
            check_hash(spec, dest)
        except WeightsError:
            dest.unlink(missing_ok=True)
            raise
        status[key] = "downloaded"
    return status
