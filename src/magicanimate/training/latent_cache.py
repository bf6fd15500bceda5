"""The frozen VAE's posterior of every training frame, encoded once before the first step.

A training step encodes its targets and references with the frozen VAE. When the frames
are stored at the training size (no resize, so the crop is the whole frame), the only
augmentation that changes a frame is the horizontal flip; so every frame's posterior and
its mirror image's posterior can be encoded once, stored, and read back instead. A latent
is then ``mean + std * eps`` with the same ``eps`` as before: the same training up to float
rounding (the VAE sees other batches), without the VAE's cost per step.

The table is one float32 ``.npy`` of shape (rows, 2, 2, c, h, w): row = one frame of one
item (items in dataset order, a still image is one row), axis 1 = (as stored, mirrored),
axis 2 = (mean, std). Its name holds a digest of the VAE's weights, the frame size and the
items, so a table is never read for another VAE or data set.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from einops import rearrange

from magicanimate.errors import InputError
from magicanimate.io.image import load_image
from magicanimate.models.vae import latent_shape
from magicanimate.training.augment import mirror_image
from magicanimate.training.data import FrameReader, Item

log = logging.getLogger(__name__)

AS_STORED, MIRRORED = 0, 1
MEAN, STD = 0, 1


@dataclass
class LatentTable:
    """The stored posteriors and where each item's frames start in them."""

    path: Path
    first_row: dict[Path, int]  # item source -> row of its frame 0
    table: np.ndarray  # (rows, 2, 2, c, h, w) float32, memory-mapped

    def posterior(self, rows: torch.Tensor, mirrored: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) float32 (*rows.shape, c, h, w) of the frames at ``rows`` (int), flipped where ``mirrored``."""
        flat_rows = rows.reshape(-1).numpy()  # (n,)
        flat_flip = mirrored.reshape(-1).numpy().astype(np.int64)  # (n,)
        picked = torch.from_numpy(np.ascontiguousarray(self.table[flat_rows, flat_flip]))  # (n, 2, c, h, w)
        shape = (*rows.shape, *picked.shape[2:])
        return picked[:, MEAN].reshape(shape), picked[:, STD].reshape(shape)  # (*rows.shape, c, h, w) each


def item_frames(reader: FrameReader, item: Item) -> np.ndarray:
    """Every frame of an item, uint8 (F, H, W, 3) (a still image: F = 1)."""
    if item.kind == "image":
        return load_image(item.source)[None]
    length = reader.info(item.source)[0]
    return reader.frames(item.source, list(range(length)))


def frame_counts(reader: FrameReader, items: list[Item]) -> list[int]:
    """Rows each item takes in the table (its frame count; 1 for a still image)."""
    return [1 if item.kind == "image" else reader.info(item.source)[0] for item in items]


def table_key(vae: torch.nn.Module, items: list[Item], counts: list[int], *, width: int, height: int) -> str:
    """Digest of the VAE's weights, the frame size and the items (paths, frame counts, file sizes)."""
    digest = hashlib.sha256(f"{width}x{height}".encode())
    for name, tensor in sorted(vae.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    for item, count in zip(items, counts):
        size = item.source.stat().st_size if item.source.is_file() else 0
        digest.update(f"{item.kind}|{item.source.resolve()}|{count}|{size}\n".encode())
    return digest.hexdigest()[:20]


@torch.no_grad()
def encode_posteriors(vae: torch.nn.Module, frames: np.ndarray, *, chunk: int, device: torch.device,
                      dtype: torch.dtype) -> np.ndarray:
    """uint8 (F, H, W, 3) -> float32 (F, 2, c, h, w): the VAE posterior's (mean, std) of each frame."""
    out = []
    for start in range(0, frames.shape[0], chunk):
        part = torch.from_numpy(np.array(frames[start:start + chunk]))  # a writable copy (frames may be mapped)
        x = rearrange(part.to(device), "n h w c -> n c h w").to(dtype) / 127.5 - 1
        posterior = vae.encode(x).latent_dist
        out.append(torch.stack([posterior.mean, posterior.std], dim=1).float().cpu())  # (n, 2, c, h, w)
    return torch.cat(out).numpy()


def build_latent_table(vae: torch.nn.Module, items: list[Item], *, folder: Path, width: int, height: int,
                       chunk: int, device: torch.device, dtype: torch.dtype, write: bool = True,
                       progress: Callable[[str], None] = log.info) -> LatentTable:
    """Encode (or find in ``folder``) the posteriors of every frame of ``items`` and of its mirror image.

    Raises ``InputError`` when a frame is not stored at ``width`` x ``height``. With
    ``write=False`` (other processes than the main one) the table must already exist.
    ``progress`` receives a line at the start, every tenth of the frames and the end.
    """
    reader = FrameReader()
    counts = frame_counts(reader, items)
    first_row, row = {}, 0
    for item, count in zip(items, counts):
        first_row[item.source] = row
        row += count
    path = Path(folder) / f"latents-{table_key(vae, items, counts, width=width, height=height)}.npy"
    if not path.exists() and write:
        _write_table(path, vae, items, counts, reader=reader, width=width, height=height, chunk=chunk,
                     device=device, dtype=dtype, progress=progress)
    try:
        table = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read the latent table {path}: {err}") from None
    c, h, w = latent_shape(vae, height, width)
    if table.shape != (row, 2, 2, c, h, w) or table.dtype != np.float32:
        raise InputError(f"latent table {path} holds {table.shape} {table.dtype}, expected "
                         f"{(row, 2, 2, c, h, w)} float32: delete it to encode it again")
    return LatentTable(path, first_row, table)


def _write_table(path: Path, vae: torch.nn.Module, items: list[Item], counts: list[int], *, reader: FrameReader,
                 width: int, height: int, chunk: int, device: torch.device, dtype: torch.dtype,
                 progress: Callable[[str], None]) -> None:
    """Encode every frame and its mirror image into ``path`` (written to a temporary name, then renamed)."""
    c, h, w = latent_shape(vae, height, width)
    rows = sum(counts)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    progress(f"latent table: encoding {rows} training frames and their mirror images once into {path}")
    t0, row, next_report = time.monotonic(), 0, 0.1
    try:
        table = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=(rows, 2, 2, c, h, w))
        for item, count in zip(items, counts):
            frames = item_frames(reader, item)
            if frames.shape[1:3] != (height, width):
                raise InputError(f"data.latent_cache needs every frame stored at {width}x{height} (no resize); "
                                 f"{item.name()} has {frames.shape[0]} frames of {frames.shape[2]}x{frames.shape[1]}")
            if frames.shape[0] != count:
                raise InputError(f"{item.name()}: decoded {frames.shape[0]} frames, its header says {count}")
            for side, images in ((AS_STORED, frames), (MIRRORED, mirror_image(frames))):
                table[row:row + count, side] = encode_posteriors(vae, images, chunk=chunk, device=device, dtype=dtype)
            row += count
            if row >= next_report * rows:
                progress(f"latent table: {row} of {rows} frames ({time.monotonic() - t0:.0f} s)")
                next_report += 0.1
        table.flush()
        del table
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    progress(f"latent table: written in {time.monotonic() - t0:.0f} s")
