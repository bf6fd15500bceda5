"""Where the official DensePose checkpoint comes from and where it is cached; a resumable download.

detectron2 publishes ``model_final_162be9.pkl`` without a checksum (its model zoo table links
only the file and its metrics), so only the size announced by the server is verified.
Licence of the weights: CC BY-SA 3.0 (detectron2 ``projects/DensePose/doc/DENSEPOSE_IUV.md``).
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Callable
from pathlib import Path

from magicanimate.errors import WeightsError

FILENAME = "model_final_162be9.pkl"
URL = ("https://dl.fbaipublicfiles.com/densepose/densepose_rcnn_R_50_FPN_s1x/165712039/"
       "model_final_162be9.pkl")
LICENSE = "CC BY-SA 3.0"
SHA256: str | None = None  # not published by detectron2
ENV_VAR = "MAGICANIMATE_DENSEPOSE_DIR"
DEFAULT_DIR = Path("~/.cache/magicanimate/densepose")


def densepose_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder: the argument, else $MAGICANIMATE_DENSEPOSE_DIR, else ~/.cache/magicanimate/densepose."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get(ENV_VAR) or DEFAULT_DIR).expanduser()


def densepose_weights_path(cache_dir: str | os.PathLike[str] | None = None, *, must_exist: bool = True) -> Path:
    """Path of the cached checkpoint; WeightsError with the fix when it is absent and ``must_exist``."""
    path = densepose_dir(cache_dir) / FILENAME
    if must_exist and not path.is_file():
        raise WeightsError(
            f"DensePose weights '{FILENAME}' not found at {path}. To fix: run `magicanimate download --densepose` "
            f"(needs internet), or download {URL} and pass its path (--weights / from_pretrained(path)), "
            f"or set ${ENV_VAR} to the folder holding it. Licence: {LICENSE}."
        )
    return path


def download_densepose_weights(
    cache_dir: str | os.PathLike[str] | None = None, *, url: str = URL,
    progress: Callable[[int, int | None], None] | None = None, chunk_size: int = 1 << 20,
) -> Path:
    """Download the checkpoint into the cache, resuming a partial ``.part`` file; ``progress(bytes_done, total)``."""
    dest = densepose_weights_path(cache_dir, must_exist=False)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    done = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={done}-"} if done else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            if done and response.status != 206:  # the server ignored the range: start again
                done = 0
            length = response.headers.get("Content-Length")
            total = done + int(length) if length is not None else None
            with open(part, "ab" if done else "wb") as f:
                while chunk := response.read(chunk_size):
                    f.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
    except OSError as err:  # network failures; the partial file is kept for the next attempt
        raise WeightsError(f"could not download {url} to {dest} ({type(err).__name__}: {err}); "
                           "run the download again to resume") from err
    if total is not None and part.stat().st_size != total:
        raise WeightsError(f"{part} has {part.stat().st_size} bytes, the server announced {total}; "
                           "run the download again to resume")
    os.replace(part, dest)
    return dest
