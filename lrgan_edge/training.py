"""The training loop, built from step functions (paper §3.4, DESIGN §5).

One iteration: the generator draws every stage's images from noise and the metadata of the
batch's real images; the discriminators step on (real, detached fake); the generator steps on
the adversarial loss of every stage plus colour consistency; the EMA follows.

Under torchrun (`distributed.py`) G and D train through DistributedDataParallel: every rank
draws its own share of the global batch (sharded sampler, per-rank noise), gradients are averaged
across ranks, so weights, optimizer states and the EMA stay bit-identical (checked at every
checkpoint); logged values are averaged over ranks; only rank 0 writes files; decisions to stop
are agreed by all ranks.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torchvision.utils import save_image

from . import checkpoint as ckpt
from . import distributed as dist_utils
from .config import RunConfig
from .data import EpochSampler, ImageSet, stage_pyramid, to_float
from .discriminator import Discriminators
from .errors import TrainingError
from .generator import Generator
from .losses import discriminator_loss, generator_adversarial_loss, r1_penalty, total_color_loss


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    stopped_by: str          # "done", "time limit", "SIGINT" or "SIGTERM"
    images_per_s: float
    elapsed_s: float


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


METRICS_FILE = "metrics.jsonl"     # FID/KID records of `--eval-every` and `lrgan-edge eval`, one JSON per line


class StagesForward(torch.nn.Module):
    """G.forward_stages as a module's forward, for DistributedDataParallel (which wraps forward)."""

    def __init__(self, G: Generator) -> None:
        super().__init__()
        self.G = G

    def forward(self, z: torch.Tensor, meta: torch.Tensor) -> list[torch.Tensor]:
        return self.G.forward_stages(z, meta)


class Trainer:
    def __init__(self, cfg: RunConfig, data: ImageSet, run_dir: Path, device: torch.device,
                 metadata: torch.Tensor, rank: int = 0, world_size: int = 1,
                 evaluator: Callable[[torch.nn.Module], dict] | None = None) -> None:
        self.cfg, self.data, self.run_dir, self.device = cfg, data, Path(run_dir), device
        self.rank, self.world_size, self.is_main = rank, world_size, rank == 0
        self.evaluator = evaluator          # G_ema -> metrics (FID/KID), every train.eval_every steps
        t, m = cfg.train, cfg.model
        if t.batch_size % world_size:
            raise TrainingError(f"batch_size={t.batch_size} does not split across {world_size} ranks; "
                                f"use a multiple of {world_size}")
        if len(data) < world_size:
            raise TrainingError(f"{len(data)} training image(s) cannot be shared by {world_size} ranks; "
                                f"add images or start fewer processes")
        self.local_batch = t.batch_size // world_size
        self.cuda = device.type == "cuda"
        self.amp_dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) \
            if (self.cuda and t.amp) else None
        memory_format = torch.channels_last if (self.cuda and t.channels_last) else torch.preserve_format

        torch.manual_seed(t.seed)                      # same initial weights on every rank
        self.G = Generator(m).to(device, memory_format=memory_format)
        self.D = Discriminators(m).to(device, memory_format=memory_format)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.G.set_fast_attention(t.fast_attention)
        self.G_train, self.D_train = StagesForward(self.G), self.D     # what the training steps call
        if world_size > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP
            ids = [device.index] if self.cuda else None
            self.G_train = DDP(self.G_train, device_ids=ids, forward_sync_buffers=False)
            self.D_train = DDP(self.D, device_ids=ids, forward_sync_buffers=False)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=t.lr_g, betas=(t.beta1, t.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=t.lr_d, betas=(t.beta1, t.beta2))
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.ema_beta = 0.5 ** (t.batch_size / max(t.ema_half_life_images, 1))

        self.metadata = metadata                       # (N, 512) for every training image, on the CPU
        self.sampler = EpochSampler(len(data), t.seed, rank, world_size)
        self.noise = torch.Generator().manual_seed(t.seed * 7919 + rank)
        bank_gen = torch.Generator().manual_seed(t.seed)
        bank_idx = torch.randperm(len(data), generator=bank_gen)[:t.meta_bank_size]
        self.meta_bank = metadata[bank_idx].clone()
        self.meta_bank_index = bank_idx.clone()          # which training image each bank row came from
        fixed = torch.Generator().manual_seed(12345)   # the grid's noise never changes across a run
        self.fixed_z = torch.randn(t.sample_grid, m.z_dim, generator=fixed)
        grid_rows = torch.arange(t.sample_grid) % len(self.meta_bank)
        self.fixed_meta = self.meta_bank[grid_rows]
        self.fixed_meta_images = data.images[bank_idx[grid_rows]]   # shown beside the grids (paper Fig. 3)
        self.step, self.elapsed_s, self.last_saved_step = 0, 0.0, None
        self._stop: str | None = None

    # ---- one iteration -------------------------------------------------------------------
    def next_batch(self) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        idx = self.sampler.next(self.local_batch)
        reals = to_float(self.data.images[idx].to(self.device, non_blocking=True))     # (b, 3, R, R)
        real_stages = stage_pyramid(reals, self.cfg.model.stage_resolutions)
        z = torch.randn(len(idx), self.cfg.model.z_dim, generator=self.noise).to(self.device)
        meta = self.metadata[idx].to(self.device)      # each fake gets a real image's metadata (§3.3)
        return real_stages, z, meta

    def _autocast(self):
        return torch.autocast("cuda", dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def d_step(self, real_stages: list[torch.Tensor], fake_stages: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        t = self.cfg.train
        self.opt_d.zero_grad(set_to_none=True)
        r1 = t.r1_gamma > 0 and self.step % t.r1_every == 0
        if r1:
            real_stages = [r.detach().requires_grad_(True) for r in real_stages]
        with self._autocast():
            real_logits = self.D_train(real_stages)
            fake_logits = self.D_train([f.detach() for f in fake_stages])
            loss = discriminator_loss([r.float() for r in real_logits], [f.float() for f in fake_logits])
        penalty = r1_penalty(real_stages, real_logits) * (t.r1_gamma / 2 * t.r1_every) if r1 else loss.new_zeros(())
        self.scaler.scale(loss + penalty).backward()
        self.scaler.step(self.opt_d)
        return {"loss_d": loss.detach(),
                "d_real": torch.stack([r.float().mean() for r in real_logits]).mean().detach(),
                "d_fake": torch.stack([f.float().mean() for f in fake_logits]).mean().detach()}

    def g_step(self, fake_stages: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        t = self.cfg.train
        self.opt_g.zero_grad(set_to_none=True)
        self.D.requires_grad_(False)      # D (not D_train): its frozen weights take no part in D's reduction
        with self._autocast():
            adv = generator_adversarial_loss([f.float() for f in self.D(fake_stages)])
        color = total_color_loss([f.float() for f in fake_stages], t.color_lambda_mean, t.color_lambda_cov)
        loss = adv + t.color_weight * color                                          # Eq. 4
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt_g)
        self.D.requires_grad_(True)
        return {"loss_g": loss.detach(), "loss_g_adv": adv.detach(), "loss_color": color.detach()}

    @torch.no_grad()
    def update_ema(self) -> None:
        beta = self.ema_beta if self.step >= self.cfg.train.ema_start_step else 0.0
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.lerp_(p, 1.0 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    def train_step(self) -> dict[str, float]:
        real_stages, z, meta = self.next_batch()
        self.G.train()
        with self._autocast():
            fake_stages = self.G_train(z, meta)
        stats = self.d_step(real_stages, fake_stages)
        stats.update(self.g_step(fake_stages))
        self.scaler.update()
        self.step += 1
        self.update_ema()
        averaged = dist_utils.mean_over_ranks(torch.stack([v.float() for v in stats.values()]))
        values = dict(zip(stats, averaged.tolist()))
        if not all(math.isfinite(v) for v in values.values()):
            losses = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
            kept = f"the last good checkpoint (step {self.last_saved_step}) is kept in {self.run_dir}" \
                if self.last_saved_step is not None else "no checkpoint was written yet"
            raise TrainingError(f"non-finite loss at step {self.step} ({losses}); {kept}; "
                                f"lower the learning rates (--set lr_g=... --set lr_d=...) or check the data")
        return values

    # ---- files ---------------------------------------------------------------------------
    @torch.no_grad()
    def save_samples(self) -> Path | None:
        if not self.is_main:
            return None
        images = self.G_ema(self.fixed_z.to(self.device), self.fixed_meta.to(self.device)).float().cpu()
        out = self.run_dir / "samples" / f"step_{self.step:07d}.png"
        nrow = max(1, int(math.sqrt(len(images))))
        with self.writing("a sample grid"):
            out.parent.mkdir(exist_ok=True)
            save_image(images * 0.5 + 0.5, out, nrow=nrow)
            meta_grid = out.parent / "meta_images.png"
            if not meta_grid.exists():
                save_image(to_float(self.fixed_meta_images) * 0.5 + 0.5, meta_grid, nrow=nrow)
        return out

    def save_checkpoint(self) -> None:
        """Collective under DDP (every rank calls it): ranks' weights are compared, rank 0 writes."""
        digests = []                                     # hashing every weight is only worth it across ranks
        if self.world_size > 1:
            digests = dist_utils.gather(dist_utils.digest(self.G, self.G_ema, self.D))
            dist_utils.check_ranks_agree(digests, self.step)
        noise_states = dist_utils.gather(self.noise.get_state())
        if not self.is_main:
            return
        tensors = {**ckpt.prefixed("G", self.G), **ckpt.prefixed("G_ema", self.G_ema), **ckpt.prefixed("D", self.D)}
        opt_g, opt_g_info = ckpt.flatten_optimizer("opt_g", self.opt_g)
        opt_d, opt_d_info = ckpt.flatten_optimizer("opt_d", self.opt_d)
        tensors.update(opt_g)
        tensors.update(opt_d)
        tensors["meta_bank"] = self.meta_bank
        tensors["meta_bank_index"] = self.meta_bank_index
        tensors["rng.noise"] = noise_states[0]
        tensors.update({f"rng.noise.rank{r}": st for r, st in enumerate(noise_states) if r})
        tensors["rng.torch"] = torch.get_rng_state()
        state = {"step": self.step, "elapsed_s": self.elapsed_s, "sampler": self.sampler.state(),
                 "opt_g": opt_g_info, "opt_d": opt_d_info, "scaler": self.scaler.state_dict(),
                 "data": self.data.source, "metadata": self.cfg.train.metadata,
                 "world_size": self.world_size, "rank_digests": digests}
        with self.writing("the checkpoint"):
            ckpt.save_checkpoint(self.run_dir / ckpt.CHECKPOINT_NAME, self.cfg, tensors, state)
        self.last_saved_step = self.step

    @contextlib.contextmanager
    def writing(self, what: str):
        """A failed write (full disk, read-only folder) stops the run with one line; the last checkpoint stays."""
        try:
            yield
        except OSError as exc:
            kept = f"the checkpoint of step {self.last_saved_step} is kept" if self.last_saved_step is not None \
                else "no checkpoint was written yet"
            raise TrainingError(f"cannot write {what} in {self.run_dir} at step {self.step} "
                                f"({exc.strerror or exc}); {kept}; free disk space or make the folder writable, "
                                f"then continue with --resume {self.run_dir}") from None

    def restore(self, tensors: dict[str, torch.Tensor], state: dict) -> None:
        file = self.run_dir / ckpt.CHECKPOINT_NAME
        ckpt.load_module_state(self.G, ckpt.unprefixed("G", tensors), "generator", file)
        ckpt.load_module_state(self.G_ema, ckpt.unprefixed("G_ema", tensors), "EMA generator", file)
        ckpt.load_module_state(self.D, ckpt.unprefixed("D", tensors), "discriminator", file)
        self.opt_g.load_state_dict(ckpt.unflatten_optimizer("opt_g", tensors, state["opt_g"]))
        self.opt_d.load_state_dict(ckpt.unflatten_optimizer("opt_d", tensors, state["opt_d"]))
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        saved_world = int(state.get("world_size", 1))
        own = f"rng.noise.rank{self.rank}" if self.rank else "rng.noise"
        self.noise.set_state(tensors[own] if saved_world == self.world_size and own in tensors
                             else tensors["rng.noise"])
        torch.set_rng_state(tensors["rng.torch"])
        sampler = dict(state["sampler"])
        if saved_world != self.world_size:      # the position counts per-rank samples: rescale it
            sampler["position"] = int(sampler["position"]) * saved_world // self.world_size
        self.sampler.load_state(sampler)
        self.step, self.elapsed_s = int(state["step"]), float(state["elapsed_s"])
        self.last_saved_step = self.step

    def evaluate(self) -> None:
        """Metrics of the EMA generator appended to metrics.jsonl; the training RNG is left untouched."""
        if not (self.is_main and self.evaluator):
            return
        with torch.random.fork_rng(devices=[]):
            record = self.evaluator(self.G_ema)
        with self.writing(METRICS_FILE), open(self.run_dir / METRICS_FILE, "a") as f:
            f.write(json.dumps({"step": self.step, "elapsed_s": round(self.elapsed_s, 2), **record}) + "\n")

    def log(self, values: dict) -> None:
        if self.is_main:
            with self.writing("log.jsonl"), open(self.run_dir / "log.jsonl", "a") as f:
                f.write(json.dumps(values) + "\n")

    # ---- the loop ------------------------------------------------------------------------
    def _on_signal(self, signum, _frame) -> None:
        self._stop = signal.Signals(signum).name

    def run(self, on_step: Callable[[int, dict], None] | None = None) -> TrainResult:
        t = self.cfg.train
        handlers = {}
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                handlers[sig] = signal.signal(sig, self._on_signal)
        except ValueError:   # not the main thread: the caller handles signals
            pass
        images_per_s, window_time, window_images = 0.0, 0.0, 0
        stopped_by = "done"
        try:
            if self.step == 0:
                self.save_samples()
            while self.step < t.steps and self._stop is None and not 0 < t.max_train_s <= self.elapsed_s:
                start = time.perf_counter()
                values = self.train_step()
                step_time = time.perf_counter() - start    # train steps only, not grids or checkpoints
                self.elapsed_s += step_time
                window_time, window_images = window_time + step_time, window_images + t.batch_size
                images_per_s = window_images / window_time           # over the last second or so
                if window_time >= 1.0:
                    window_time, window_images = 0.0, 0
                values.update(step=self.step, images_per_s=images_per_s, elapsed_s=self.elapsed_s)
                # Every rank must take the same branches below (checkpoints are collective).
                signalled, out_of_time = dist_utils.any_rank(self._stop is not None, 0 < t.max_train_s <= self.elapsed_s)
                if signalled and self._stop is None:
                    self._stop = "SIGTERM"          # another rank was signalled: stop with it
                last = self.step == t.steps or out_of_time
                if self.step % t.log_every == 0 or last:
                    self.log(values)
                if self.step % t.sample_every == 0 or last:
                    self.save_samples()
                if self.step % t.checkpoint_every == 0 or last:
                    self.save_checkpoint()
                if t.eval_every and (self.step % t.eval_every == 0 or last):
                    self.evaluate()
                if on_step:
                    on_step(self.step, values)
                if out_of_time or signalled:
                    break
            if 0 < t.max_train_s <= self.elapsed_s:
                stopped_by = "time limit"
            if self._stop is not None and self.last_saved_step != self.step:
                self.save_checkpoint()
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        return TrainResult(self.run_dir, self.step, self._stop or stopped_by, images_per_s, self.elapsed_s)
