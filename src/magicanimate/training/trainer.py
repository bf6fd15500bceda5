"""The training loop of every stage (accelerate: one process per GPU, DDP, mixed precision).

Per optimiser step, for each micro-batch:
  1. encode the target frames and the reference with the frozen VAE (latents x VAE_SCALE);
  2. draw noise and timesteps t ~ U{0..999}; noise the latents with DDPM (the release's betas);
  3. predict the noise (appearance encoder on the clean reference at t -> reference attention;
     ControlNet on the DensePose; temporal UNet, motion modules bypassed for still images);
  4. loss = MSE(predicted noise, noise) (the epsilon objective); backward.
Then clip, step the optimiser, the schedule and the EMA; log; checkpoint; sample.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from magicanimate.weights.build import Components, read_prediction_type
from magicanimate.weights.layout import WeightPaths
from magicanimate.errors import InputError
from magicanimate.training.starting_models import (
    build_starting_models, check_before_run, resolve_pretrained,
)
from magicanimate.weights.build import quiet_diffusers
from magicanimate.training.checkpoint import (
    TrainingState, checkpoint_dir, list_checkpoints, load_checkpoint, prune_checkpoints, resolve_resume,
    save_checkpoint, save_rng,
)
from magicanimate.training.config import TrainConfig, save_config
from magicanimate.training.data import DrawSampler, TrainingDataset, collate, load_items
from magicanimate.training.ema import EMA
from magicanimate.training.latent_cache import LatentTable, build_latent_table
from magicanimate.training.export import export_release_layout
from magicanimate.training.logger import TrainingLog, progress_line
from magicanimate.training.loss_weighting import (epsilon_loss_scale, high_noise_weights, min_snr_weights,
                                                  person_cell_weights, weighted_sample_means)
from magicanimate.training.model import TrainingModel
from magicanimate.models.text import empty_prompt_embedding
from magicanimate.models.vae import VAE_SCALE, latent_downsampling, latent_shape
from magicanimate.sampling.schedulers import training_noise_scheduler

log = logging.getLogger(__name__)



@dataclass
class TrainSummary:
    """What a run did (also written to summary.json)."""

    output: str
    weights: str | None
    start_step: int
    steps: int
    stopped: str  # "max_steps", "time_budget" or "signal"
    steps_per_second: float
    final_loss: float | None
    rank_digests: list[str]


def _seed_for(*parts: int) -> int:
    """A 63-bit seed derived from integers (numpy SeedSequence: well mixed, platform independent)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0] >> 1)


def params_digest(named: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the trained parameters (names and float32 bytes): equal on every rank after a step."""
    h = hashlib.sha256()
    for name in sorted(named):
        h.update(name.encode())
        h.update(named[name].detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def fused_adamw_available(device: torch.device) -> bool:
    """Whether torch has a fused AdamW kernel for ``device`` (CUDA; CPU from torch 2.4)."""
    if device.type == "cuda":
        return True
    major, minor = (int(part) for part in torch.__version__.split(".")[:2])
    return device.type == "cpu" and (major, minor) >= (2, 4)


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (``mkdir(parents=True)`` creates it), or None."""
    if path.exists():
        return None
    while not path.parent.exists() and path.parent != path:
        path = path.parent
    return path


class Trainer:
    """One training run; ``run()`` trains to ``max_steps`` or the time budget, then exports."""

    def __init__(self, cfg: TrainConfig, *, resume: str | None = None):
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        self.t0 = time.monotonic()
        self.cfg = cfg.check()
        check_before_run(cfg)  # starting weights, trainable set, schedule: before any folder is made
        self.accelerator = Accelerator(
            mixed_precision=cfg.mixed_precision,
            gradient_accumulation_steps=cfg.gradient_accumulation_steps,
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=cfg.ddp_find_unused_parameters)],
        )
        acc = self.accelerator
        self.device = acc.device
        self.weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(cfg.mixed_precision, torch.float32)
        self.output = Path(cfg.output)
        self.resume_from = resolve_resume(resume, self.output) if resume else None
        if self.resume_from is None and list_checkpoints(self.output):
            raise InputError(f"{self.output} already holds checkpoints: continue with --resume, or choose "
                             "another --output")
        items, problems = load_items(cfg.data, cfg.data.split)  # a missing dataset is said before any folder exists

        # The run folder exists from here on; when setting up fails, what this run created is removed again.
        created = _first_missing(self.output.absolute())
        try:
            self._set_up(cfg, items, problems)
        except BaseException:
            if created is not None and acc.is_main_process:
                shutil.rmtree(created, ignore_errors=True)
            raise

    def _set_up(self, cfg: TrainConfig, items: list, problems: list[str]) -> None:
        """Create the run folder, write the starting weights, build the models, optimiser and data."""
        acc = self.accelerator
        if acc.is_main_process:
            self.output.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.output / "config.yaml")
        acc.wait_for_everyone()

        # Starting weights ('random:SIZE' is written once, by the main process), then the models.
        self.pretrained = resolve_pretrained(cfg.model.pretrained, self.output, seed=cfg.seed,
                                             write=acc.is_main_process)
        acc.wait_for_everyone()
        net = self._build_network()

        # Optimiser and schedule.
        params = [p for p in net.parameters() if p.requires_grad]
        lr = cfg.optim.learning_rate
        if cfg.optim.scale_lr:
            lr *= cfg.batch_size * cfg.gradient_accumulation_steps * acc.num_processes
        optimizer = self._optimizer(params, lr)
        from diffusers.optimization import get_scheduler

        self.lr_scheduler = get_scheduler(cfg.optim.lr_scheduler, optimizer, num_warmup_steps=cfg.optim.lr_warmup_steps,
                                          num_training_steps=cfg.max_steps)
        # What the denoiser predicts: as configured, else as the starting weights declare.
        self.prediction_type = (cfg.model.prediction_type
                                or read_prediction_type(WeightPaths.release_layout(self.pretrained)))
        self.noise_scheduler = training_noise_scheduler(self.prediction_type)
        self.model, self.optimizer = acc.prepare(net, optimizer)
        self.net: TrainingModel = acc.unwrap_model(self.model)
        self.named_trainable = {n: p for n, p in self.net.named_parameters() if p.requires_grad}
        self.trainable_params = list(self.named_trainable.values())  # what the gradient clip measures
        self.ema = (EMA(list(self.named_trainable.items()), decay=cfg.ema.decay, warmup=cfg.ema.warmup)
                    if cfg.ema.enabled else None)

        # Resume.
        self.step, self.elapsed_before = 0, 0.0
        if self.resume_from is not None:
            state = load_checkpoint(self.resume_from, named_params=self.named_trainable, optimizer=self.optimizer,
                                    scheduler=self.lr_scheduler, scaler=acc.scaler, ema=self.ema,
                                    rank=acc.process_index)
            self.step, self.elapsed_before = state.step, state.elapsed_seconds
            log.info("resumed from %s at step %d", self.resume_from, self.step)
        self.start_step = self.step
        self.saved_step = self.step if self.resume_from else None  # step of the newest checkpoint

        # Data.
        self.items = items
        if problems and acc.is_main_process:
            (self.output / "data_problems.txt").write_text("\n".join(problems) + "\n")
            log.warning("%d dataset entries skipped (see %s)", len(problems), self.output / "data_problems.txt")
        self.latents = self._latent_table(items) if cfg.data.latent_cache else None
        self.dataset = TrainingDataset(items, cfg.data, seed=cfg.seed,
                                       first_row=self.latents.first_row if self.latents is not None else None)
        self.reported: set[str] = set()
        self.log = (TrainingLog(self.output, resume_step=self.step if self.resume_from else None,
                                tensorboard=cfg.tensorboard)
                    if acc.is_main_process else None)
        self.fixed_batch = self._fixed_batch() if cfg.fixed_batch_every and acc.is_main_process else None
        self.validation = self._validation_inputs(items) if cfg.validation.every and acc.is_main_process else None
        self._stop_signal = False

    # ------------------------------------------------------------------ setup helpers
    def _build_network(self) -> torch.nn.Module:
        """The trained network (frozen parts cast to the half dtype), the frozen VAE and the empty prompt."""
        cfg = self.cfg
        self.start = build_starting_models(dataclasses.replace(cfg.model, pretrained=str(self.pretrained)),
                                           seed=cfg.seed)
        for note in self.start.notes:
            log.info(note)
        net = TrainingModel(self.start.models.unet, self.start.models.controlnet, self.start.models.appearance_encoder,
                            use_motion_modules=cfg.stage == 2)
        self.trainable_names = net.select_trainable(cfg.model.trainable)
        net.train()
        if cfg.model.gradient_checkpointing:
            net.unet.enable_gradient_checkpointing()
            net.controlnet.enable_gradient_checkpointing()
            net.appearance_encoder.enable_gradient_checkpointing()
        self._cast_frozen(net)
        with quiet_diffusers():  # diffusers warns on every dtype cast of its models
            self.vae = self.start.models.vae.to(self.device, self.weight_dtype).eval().requires_grad_(False)
        text_encoder = self.start.models.text_encoder.to(self.device, self.weight_dtype).eval().requires_grad_(False)
        self.text = self._empty_prompt(text_encoder)  # (1, 77, d)
        return net

    def _latent_table(self, items: list) -> LatentTable:
        """The VAE posteriors of every training frame (encoded by the main process when not found)."""
        acc, data = self.accelerator, self.cfg.data
        folder = Path(data.latent_cache_dir) if data.latent_cache_dir else self.output / "latents"
        kwargs = dict(folder=folder, width=data.width, height=data.height, chunk=self.cfg.vae_chunk,
                      device=self.device, dtype=self.weight_dtype,
                      progress=lambda line: print(line, file=sys.stderr, flush=True))
        table = build_latent_table(self.vae, items, write=True, **kwargs) if acc.is_main_process else None
        acc.wait_for_everyone()
        return table if table is not None else build_latent_table(self.vae, items, write=False, **kwargs)

    def _validation_inputs(self, items: list) -> Any:
        """What ``write_validation`` samples from (reference, motion)."""
        from magicanimate.training.validation import validation_inputs

        return validation_inputs(self.cfg, items)

    def _cast_frozen(self, net: TrainingModel) -> None:
        """In mixed precision, store frozen weights in the half dtype, except those exported from memory."""
        if self.weight_dtype == torch.float32:
            return
        keep = self._written_from_memory(net)
        with torch.no_grad():
            for name, param in net.named_parameters():
                if not param.requires_grad and not keep(name):
                    param.data = param.data.to(self.weight_dtype)

    def _written_from_memory(self, net: TrainingModel):
        """Predicate on parameter names: exported from the live model (so kept in float32)."""
        sources = self.start.sources
        trains = {part: net.trains(part) for part in ("unet", "controlnet", "appearance_encoder")}
        whole = self._whole_unet_export(net)

        def keep(name: str) -> bool:
            part = name.split(".")[0]
            if part == "unet":
                if "motion_modules" in name:
                    return trains["unet"] or sources["temporal_attention"] is None
                return whole and (trains["unet"] or sources["temporal_attention"] is None)
            key = "appearance_encoder" if part == "appearance_encoder" else "controlnet"
            return trains[part] or sources[key] is None

        return keep

    def _whole_unet_export(self, net: TrainingModel) -> bool:
        """temporal_attention.ckpt must hold the whole UNet (spatial weights not SD 1.5's)."""
        spatial_trains = any(p.requires_grad for n, p in net.unet.named_parameters() if "motion_modules" not in n)
        return self.start.unet_spatial_from_checkpoint or spatial_trains

    def _empty_prompt(self, text_encoder: torch.nn.Module) -> torch.Tensor:
        return empty_prompt_embedding(self.start.models.tokenizer, text_encoder, device=self.device).float()

    def _optimizer(self, params: list[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
        o = self.cfg.optim
        kwargs = dict(lr=lr, betas=(o.adam_beta1, o.adam_beta2), eps=o.adam_epsilon, weight_decay=o.weight_decay)
        if o.use_8bit_adam:
            try:
                import bitsandbytes as bnb
            except ImportError as err:
                raise InputError("optim.use_8bit_adam needs the bitsandbytes package (pip install bitsandbytes)"
                                 ) from err
            return bnb.optim.AdamW8bit(params, **kwargs)
        if o.fused_adam and fused_adamw_available(self.device):
            kwargs["fused"] = True
        return torch.optim.AdamW(params, **kwargs)

    def _loader(self) -> Iterator[dict[str, Any]]:
        from torch.utils.data import DataLoader

        cfg, acc = self.cfg, self.accelerator
        sampler = DrawSampler(start_micro_batch=self.step * cfg.gradient_accumulation_steps,
                              rank=acc.process_index, world_size=acc.num_processes, batch_size=cfg.batch_size)
        workers = cfg.data.num_workers
        # Workers are spawned, not forked: forking a rank that already runs gloo/OpenMP threads
        # can leave a child holding a lock forever (an intermittent hang seen in 2-process runs).
        loader = DataLoader(self.dataset, batch_size=cfg.batch_size, sampler=sampler, num_workers=workers,
                            collate_fn=collate, persistent_workers=workers > 0,
                            prefetch_factor=2 if workers > 0 else None,
                            multiprocessing_context="spawn" if workers > 0 else None)
        return iter(loader)

    def _fixed_batch(self) -> dict[str, Any]:
        samples = [self.dataset.sample(i, stream=1) for i in range(self.cfg.fixed_batch_size)]
        return collate(samples)

    # ------------------------------------------------------------------ one micro-batch
    @torch.no_grad()
    def _encode(self, frames: torch.Tensor, eps: torch.Tensor | None) -> torch.Tensor:
        """uint8 (n, H, W, 3) -> latents (n, c, h, w) float32 (SD's VAE: c = 4, h = H/8, w = W/8):
        posterior sample (eps given) or mean."""
        x = rearrange(frames.to(self.device), "n h w c -> n c h w").to(self.weight_dtype) / 127.5 - 1
        out = []
        for start in range(0, x.shape[0], self.cfg.vae_chunk):
            posterior = self.vae.encode(x[start:start + self.cfg.vae_chunk]).latent_dist
            z = posterior.mean if eps is None else posterior.mean + posterior.std * eps[start:start + self.cfg.vae_chunk]
            out.append(z.float() * VAE_SCALE)
        return torch.cat(out)

    def _inputs(self, batch: dict[str, Any], generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Model inputs and the noise target of a batch; randomness from ``generator`` (CPU) only."""
        b, f, height, width = batch["target"].shape[:4]
        c, h, w = latent_shape(self.vae, height, width)
        eps = torch.randn((b * f, c, h, w), generator=generator).to(self.device, self.weight_dtype)
        noise = torch.randn((b, c, f, h, w), generator=generator).to(self.device)
        timesteps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (b,), generator=generator)
        keep = torch.rand(b, generator=generator) >= self.cfg.model.reference_dropout
        if "rows" in batch:  # posteriors from the latent table, the same eps
            mirrored = batch["mirrored"][:, None].expand_as(batch["rows"])  # (b, f + 1)
            mean, std = self.latents.posterior(batch["rows"], mirrored)  # (b, f + 1, c, h, w) each
            mean, std = mean.to(self.device), std.to(self.device)
            eps = rearrange(eps.float(), "(b f) c h w -> b f c h w", f=f)
            latents = rearrange((mean[:, 1:] + std[:, 1:] * eps) * VAE_SCALE, "b f c h w -> b c f h w")
            reference = mean[:, 0] * VAE_SCALE  # (b, c, h, w)
        else:
            latents = rearrange(self._encode(rearrange(batch["target"], "b f h w c -> (b f) h w c"), eps),
                                "(b f) c h w -> b c f h w", f=f)
            reference = self._encode(batch["reference"], None)
        timesteps = timesteps.to(self.device)
        weighting = self.cfg.optim.foreground_weight
        cell_weights = (person_cell_weights(batch["control"], foreground_weight=weighting,
                                            downsampling=latent_downsampling(self.vae)).to(self.device)
                        if weighting else None)  # (b, 1, f, h, w) or None
        return {
            "noisy": self.noise_scheduler.add_noise(latents, noise, timesteps),
            "timesteps": timesteps,
            "reference": reference,  # clean latent, as at inference
            "control": rearrange(batch["control"].to(self.device), "b f h w c -> b c f h w").float() / 255.0,
            "text": self.text.expand(b, -1, -1),
            "temporal": batch["temporal"].to(self.device),
            "keep_reference": keep.to(self.device),
            # what the loss compares the prediction with: the noise, or the velocity (v-prediction)
            "target": (noise if self.prediction_type == "epsilon"
                       else self.noise_scheduler.get_velocity(latents, noise, timesteps)),
            "cell_weights": cell_weights,
        }

    def _loss(self, model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        target, cell_weights = inputs.pop("target"), inputs.pop("cell_weights", None)
        pred = model(**inputs)
        gamma, cap = self.cfg.optim.snr_gamma, self.cfg.optim.high_noise_cap
        if gamma <= 0 and cap <= 1 and cell_weights is None:
            return F.mse_loss(pred.float(), target.float())
        errors = F.mse_loss(pred.float(), target.float(), reduction="none")  # (b, c, f, h, w)
        per_sample = (errors.mean(dim=(1, 2, 3, 4)) if cell_weights is None
                      else weighted_sample_means(errors, cell_weights))  # (b,)
        if gamma <= 0 and cap <= 1:
            return per_sample.mean()
        alphas_cumprod, timesteps = self.noise_scheduler.alphas_cumprod, inputs["timesteps"]
        weights = (min_snr_weights(alphas_cumprod, timesteps, gamma=gamma)
                   * high_noise_weights(alphas_cumprod, timesteps, cap=cap)
                   * epsilon_loss_scale(alphas_cumprod, timesteps, prediction_type=self.prediction_type))
        return (per_sample * weights).mean()

    def batch_loss(self, model: torch.nn.Module, batch: dict[str, Any], generator: torch.Generator) -> torch.Tensor:
        """Loss of one micro-batch; noise and timesteps drawn from ``generator``."""
        return self._loss(model, self._inputs(batch, generator))

    def release_activations(self) -> None:
        """Drop what the forward kept for the backward (the reference bank)."""
        self.net.bank.clear()

    def fixed_batch_loss(self) -> float:
        """Loss of the fixed batch (fixed noise and timesteps) under the current weights."""
        generator = torch.Generator().manual_seed(_seed_for(self.cfg.seed, 3))
        inputs = self._inputs(self.fixed_batch, generator)
        with torch.no_grad(), self.accelerator.autocast():
            loss = self._loss(self.net, inputs).item()
        self.net.bank.clear()
        return loss

    # ------------------------------------------------------------------ the loop
    def run(self) -> TrainSummary:
        """Train until max_steps, the time budget or SIGTERM; checkpoint, export, summarise."""
        cfg, acc = self.cfg, self.accelerator
        self._install_signal_handler()
        batches = self._loader()
        budget = cfg.time_budget_seconds()
        step_times, last_loss, stopped = [], None, "max_steps"
        checkpoint_seconds = 0.0
        if self.log is not None and self.fixed_batch is not None and self.step == 0:
            self.log.log(step=0, fixed_loss=self.fixed_batch_loss(), lr=self.lr_scheduler.get_last_lr()[0])
        while self.step < cfg.max_steps:
            t_step = time.monotonic()
            losses, stills = [], 0
            for micro in range(cfg.gradient_accumulation_steps):
                batch = next(batches)
                self._report_errors(batch["errors"])
                stills += sum(kind != "video" for kind in batch["kind"])
                m = self.step * cfg.gradient_accumulation_steps + micro
                generator = torch.Generator().manual_seed(_seed_for(cfg.seed, 2, m, acc.process_index))
                with acc.accumulate(self.model):
                    loss = self.batch_loss(self.model, batch, generator)
                    acc.backward(loss)
                    if acc.sync_gradients:
                        if cfg.optim.max_grad_norm > 0:
                            acc.clip_grad_norm_(self.trainable_params, cfg.optim.max_grad_norm)
                        self.optimizer.step()
                        if not acc.optimizer_step_was_skipped:
                            self.lr_scheduler.step()
                        self.optimizer.zero_grad(set_to_none=True)
                self.release_activations()  # kept through backward (checkpointed layers read it)
                losses.append(loss.detach())
            self.step += 1
            if self.ema is not None:
                self.ema.update()
            last_loss = acc.gather(torch.stack(losses).mean()[None]).mean().item()
            step_times.append(time.monotonic() - t_step)
            self._after_step(last_loss, step_times[-1], stills)
            self._print_progress(last_loss, step_times)

            if self.step % cfg.checkpoint_every == 0 and self.step < cfg.max_steps:
                t = time.monotonic()
                self.save_checkpoint()
                checkpoint_seconds = time.monotonic() - t
            if cfg.validation.every and self.step % cfg.validation.every == 0 and self.step < cfg.max_steps:
                self.write_validation()
            reason = self._should_stop(budget, step_times, checkpoint_seconds)
            if reason:
                stopped = reason
                break

        # Decided from state every rank shares, never from the output folder: rank 0 may
        # already be writing this step's checkpoint when a slower rank would look there.
        if self.saved_step != self.step:
            self.save_checkpoint()
        del batches  # stops the DataLoader workers
        weights = self.export()
        if cfg.validation.every and stopped == "max_steps":  # not when the time is up
            self.write_validation()
        done = self.step - self.start_step
        timed = step_times[1:] or step_times  # the first step includes warm-up (workers, allocations)
        rate = len(timed) / sum(timed) if timed and sum(timed) > 0 else 0.0
        from accelerate.utils import gather_object

        digests = gather_object([params_digest(self.named_trainable)])
        summary = TrainSummary(str(self.output), str(weights) if weights else None, self.start_step, done, stopped,
                               rate, last_loss, digests)
        if acc.is_main_process:
            self.log.plot()
            self.log.close()
            (self.output / "summary.json").write_text(json.dumps(summary.__dict__, indent=2))
        acc.wait_for_everyone()
        self._restore_signal_handler()
        acc.end_training()
        return summary

    def _after_step(self, loss: float, seconds: float, stills: int) -> None:
        cfg = self.cfg
        if self.log is None:
            return
        fixed = (self.fixed_batch_loss() if self.fixed_batch is not None and self.step % cfg.fixed_batch_every == 0
                 else None)
        if self.step % cfg.log_every == 0 or fixed is not None:
            samples = cfg.batch_size * cfg.gradient_accumulation_steps * self.accelerator.num_processes
            self.log.log(step=self.step, loss=loss, fixed_loss=fixed, lr=float(self.lr_scheduler.get_last_lr()[0]),
                         samples=samples, images=stills,
                         step_seconds=round(seconds, 4),
                         elapsed_seconds=round(self.elapsed_before + time.monotonic() - self.t0, 2))
        if self.step % cfg.plot_every == 0:
            self.log.plot()
        if not math.isfinite(loss):
            log.warning("step %d: loss is %s", self.step, loss)

    def _print_progress(self, loss: float, step_times: list[float]) -> None:
        """Every ``progress_every`` steps (main process): one line on stderr with the loss and the ETA."""
        every = self.cfg.progress_every
        if self.log is None or not every or self.step % every:
            return
        recent = step_times[-20:]  # the recent speed (the first step includes warm-up)
        print(progress_line(step=self.step, max_steps=self.cfg.max_steps, loss=loss,
                            lr=float(self.lr_scheduler.get_last_lr()[0]),
                            seconds_per_step=sum(recent) / len(recent)), file=sys.stderr, flush=True)

    def _report_errors(self, errors: list[str]) -> None:
        new = [e for e in errors if e not in self.reported]
        if not new:
            return
        self.reported.update(new)
        rank = self.accelerator.process_index
        with (self.output / "skipped.txt").open("a") as f:
            for line in new:
                f.write(f"step {self.step} rank {rank}: {line}\n")
        for line in new:
            log.warning("skipped unreadable training item: %s", line)

    def _should_stop(self, budget: float | None, step_times: list[float], checkpoint_seconds: float) -> str | None:
        """'time_budget' or 'signal' when the run must stop now (decided by the main process)."""
        reason = 0
        if self._stop_signal:
            reason = 2
        elif budget is not None:
            # Leave room for two more steps' worth of time plus a checkpoint and the export.
            margin = 2 * max(step_times[-5:]) + 2 * checkpoint_seconds
            if time.monotonic() - self.t0 + margin >= budget:
                reason = 1
        if self.accelerator.num_processes > 1:
            from accelerate.utils import broadcast

            reason = int(broadcast(torch.tensor([reason], device=self.device), from_process=0).item())
        return {0: None, 1: "time_budget", 2: "signal"}[reason]

    def _install_signal_handler(self) -> None:
        self._previous_handler = None
        if threading.current_thread() is threading.main_thread():
            def handler(signum, frame):  # finish the step, checkpoint, export, exit
                self._stop_signal = True

            self._previous_handler = signal.signal(signal.SIGTERM, handler)

    def _restore_signal_handler(self) -> None:
        if self._previous_handler is not None:
            signal.signal(signal.SIGTERM, self._previous_handler)

    # ------------------------------------------------------------------ outputs
    def save_checkpoint(self) -> Path:
        """Checkpoint of the current step (main writes; every rank adds its RNG state)."""
        acc = self.accelerator
        folder = checkpoint_dir(self.output, self.step)
        if acc.is_main_process:
            save_checkpoint(folder, trainable=self.named_trainable, optimizer=self.optimizer,
                            scheduler=self.lr_scheduler, scaler=acc.scaler, ema=self.ema,
                            state=TrainingState(self.step, self.elapsed_before + time.monotonic() - self.t0),
                            config=self.cfg.to_dict())
        acc.wait_for_everyone()
        save_rng(folder, acc.process_index)
        acc.wait_for_everyone()
        if acc.is_main_process:
            prune_checkpoints(self.output, self.cfg.keep_checkpoints)
        self.saved_step = self.step
        return folder

    def _export_state(self) -> dict[str, dict[str, torch.Tensor]]:
        """Full state dicts of the parts with EMA weights substituted for the trained tensors."""
        if self.ema is None:
            return {}
        state: dict[str, dict[str, torch.Tensor]] = {}
        for part in ("unet", "controlnet", "appearance_encoder"):
            shadow = {n[len(part) + 1:]: t for n, t in self.ema.shadow.items() if n.startswith(part + ".")}
            if shadow:
                full = dict(getattr(self.net, part).state_dict())
                full.update(shadow)
                state[part] = full
        return state

    def export(self) -> Path | None:
        """Write weights/ in the release layout (main process); returns its path."""
        acc = self.accelerator
        target = self.output / "weights"
        if acc.is_main_process:
            net = self.net
            export_release_layout(
                target, pretrained=self.pretrained, unet=net.unet,
                appearance_encoder=net.appearance_encoder, controlnet=net.controlnet, state=self._export_state(),
                rewrite={"appearance_encoder": net.trains("appearance_encoder"), "controlnet": net.trains("controlnet"),
                         "temporal_attention": net.trains("unet")},
                sources=self.start.sources, whole_unet=self._whole_unet_export(net),
                link_mode=self.cfg.link_untouched, prediction_type=self.prediction_type,
                spatial_unet=self.start.fresh_spatial_unet,
            )
        acc.wait_for_everyone()
        return target

    def write_validation(self) -> Path | None:
        """Sample video of the current (EMA) weights into samples/step_N.mp4 (main process)."""
        from contextlib import nullcontext

        from magicanimate.training.validation import sampling_model, write_sample

        acc = self.accelerator
        path = None
        if acc.is_main_process and self.validation is not None:
            net = self.net
            components = Components(tokenizer=self.start.models.tokenizer, text_encoder=self.start.models.text_encoder,
                                    vae=self.vae, unet=net.unet, appearance_encoder=net.appearance_encoder,
                                    controlnet=net.controlnet, prediction_type=self.prediction_type)
            net.eval()
            try:
                with (self.ema.swapped_in() if self.ema is not None else nullcontext()), acc.autocast():
                    model = sampling_model(components, device=self.device)
                    try:
                        path = write_sample(self.output / "samples" / f"step_{self.step:06d}.mp4", model,
                                            self.validation, self.cfg)
                    finally:
                        model.close()  # puts the training attention processors back
            finally:
                net.train()
        acc.wait_for_everyone()
        return path
