"""A run directory: what `train` may write into, and how a run is started or resumed."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
from pathlib import Path

import torch

from . import checkpoint as ckpt
from . import distributed
from .config import RunConfig, get_preset
from .data import ImageSet, load_images
from .errors import ConfigError, RunDirError
from .metadata import MetadataEncoder

SKIPPED_FILES = "skipped_files.txt"      # unreadable images of the data, one "name<TAB>reason" per line
RUN_FILES = (ckpt.CHECKPOINT_NAME, ckpt.CONFIG_NAME, "log.jsonl", "metrics.jsonl", "samples", SKIPPED_FILES)


def is_run_dir(path: Path) -> bool:
    return (path / ckpt.CONFIG_NAME).is_file() or (path / ckpt.CHECKPOINT_NAME).is_file()


def prepare_new_run(out: Path, overwrite: bool) -> None:
    """Refuse to write over another run (unless told) or into a folder that is not a run."""
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out {out} is a file; pass a directory")
    if out.is_dir() and any(out.iterdir()):
        if not is_run_dir(out):
            raise RunDirError(f"--out {out} is not empty and holds no lrgan-edge run; choose a new or empty directory")
        if not overwrite:
            raise RunDirError(f"--out {out} already holds a run; pass --resume {out} to continue it "
                              f"or --overwrite to start over")
        for name in RUN_FILES:
            target = out / name
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise RunDirError(f"cannot write to --out {out} ({exc.strerror}); choose a writable directory") from None


def remove_stale_temporaries(out: Path) -> None:
    """Half-written files of a killed writer (`.NAME.tmp-PID`, see atomic_write_bytes); the real files are intact."""
    for tmp in out.glob(".*.tmp-*"):
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def writing(path: Path):
    """An OSError while writing `path` (full disk, read-only folder) becomes one line naming the fix."""
    try:
        yield
    except OSError as exc:
        raise RunDirError(f"cannot write {path} ({exc.strerror or exc}); free disk space or make "
                          f"{path.parent} writable") from None


def trim_jsonl(path: Path, step: int) -> None:
    """Drop the records of steps after the checkpoint (and a line torn by a kill): they are trained again."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
        except (json.JSONDecodeError, AttributeError):
            continue
    ckpt.atomic_write_bytes(path, "".join(f"{line}\n" for line in keep).encode())


def write_config(out: Path, cfg: RunConfig, data: str) -> None:
    payload = cfg.to_dict() | {"data": data}
    ckpt.atomic_write_bytes(out / ckpt.CONFIG_NAME, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())


def resume_config(saved: RunConfig, overrides: dict[str, object]) -> RunConfig:
    """The saved config with training overrides (e.g. more steps); the model cannot change."""
    cfg = saved.with_overrides(overrides)
    if cfg.model != saved.model:
        changed = [f.name for f in dataclasses.fields(saved.model)
                   if getattr(saved.model, f.name) != getattr(cfg.model, f.name)]
        raise ConfigError(f"cannot change model.{', model.'.join(changed)} of an existing run; "
                          f"start a new run with --out elsewhere")
    if cfg.train.metadata != saved.train.metadata:
        raise ConfigError("cannot change the metadata source of an existing run; start a new run")
    return cfg


def encode_metadata(data: ImageSet, source: str, device: torch.device, progress=None) -> torch.Tensor:
    """Metadata of every training image, computed once (the encoder is frozen)."""
    encoder = MetadataEncoder(source)
    return encoder.encode_batched(data.images, device=device, progress=progress)


def run_training(data: str | None, out: Path, preset: str | None, overrides: dict[str, object], *,
                 on_progress=None, **options):
    """Start (or resume) a run in `out` and train it to `train.steps` (options: those of `open_run`).

    `on_progress(phase, total)` returns a function that is called with the number of items done
    (metadata encoding) or with (step, values) in training.
    """
    try:
        trainer = open_run(data, out, preset, overrides, on_progress=on_progress, **options)
        step_cb = on_progress("train", trainer.cfg.train.steps) if on_progress and trainer.is_main else None
        return trainer.run(on_step=step_cb)
    finally:
        distributed.shutdown()


def open_run(data: str | None, out: Path, preset: str | None, overrides: dict[str, object], *,
             resume: bool = False, overwrite: bool = False, device: str = "auto", workers: int = 4,
             inception_weights: str | Path | None = None, evaluator=None, on_message=print, on_progress=None):
    """A Trainer for a new run in `out` (or the run there, restored when `resume`), config written.

    `on_message(str)` gets one-line notices; `evaluator(G_ema) -> dict` replaces the FID/KID
    evaluation of `train.eval_every`. Under torchrun this joins the process group; rank 0 alone
    prepares the folder, speaks and writes.
    """
    from .training import METRICS_FILE, Trainer, pick_device
    out = Path(out)
    ctx = distributed.init_from_env(device)
    rank, world = (ctx.rank, ctx.world_size) if ctx else (0, 1)
    dev = ctx.device if ctx else pick_device(device)
    if rank:
        on_message, on_progress = (lambda m: None), None
    if resume:
        saved, tensors, state, _ = ckpt.read_checkpoint(out)
        if preset is not None and preset != saved.preset:
            raise ConfigError(f"--preset {preset} differs from the run's preset {saved.preset}; omit it when resuming")
        cfg = resume_config(saved, overrides)
        data = data or state.get("data")
        if state.get("data") and data != state["data"]:
            on_message(f"note: resuming on --data {data}; the run started on {state['data']}")
    else:
        cfg = get_preset(preset or "paper-ffhq").with_overrides(overrides)
        if data is None:
            raise ConfigError("--data is required for a new run: a folder of images, a .zip, or synthetic:longrange")
        if rank == 0:
            prepare_new_run(out, overwrite)
    distributed.barrier()
    if rank == 0:
        remove_stale_temporaries(out)
    images = load_images(data, cfg.model.resolution, workers=workers)
    if images.skipped_summary():
        listing = out / SKIPPED_FILES
        if rank == 0:
            with writing(listing):
                listing.write_text("".join(f"{name}\t{reason}\n" for name, reason in images.skipped))
        on_message(f"warning: {images.skipped_summary()}; all of them in {listing}")
    if images.resize_summary():
        on_message(f"note: {images.resize_summary()}")
    on_message(f"data: {len(images)} images at {cfg.model.resolution}x{cfg.model.resolution} from {data}; "
               f"metadata: {cfg.train.metadata}; device: {dev}"
               + (f"; {world} processes ({'nccl' if dev.type == 'cuda' else 'gloo'}), "
                  f"{cfg.train.batch_size // max(world, 1)} images each per step" if world > 1 else ""))
    tick = on_progress("metadata", len(images)) if on_progress else None
    metadata = encode_metadata(images, cfg.train.metadata, dev, progress=tick)
    if cfg.train.eval_every and evaluator is None and rank == 0:
        from .evaluation import training_evaluator
        with torch.random.fork_rng(devices=[]):            # Inception's construction must not move the seed
            evaluator = training_evaluator(images, cfg.train.eval_num, inception_weights, dev, on_message=on_message)
        on_message(f"FID/KID of the EMA generator every {cfg.train.eval_every} steps into {out / METRICS_FILE}")
    trainer = Trainer(cfg, images, out, dev, metadata, rank=rank, world_size=world, evaluator=evaluator)
    if resume:
        trainer.restore(tensors, state)
        on_message(f"resumed {out} at step {trainer.step} of {cfg.train.steps}")
        if rank == 0:
            for name in ("log.jsonl", METRICS_FILE):
                with writing(out / name):
                    trim_jsonl(out / name, trainer.step)
        saved_world = int(state.get("world_size", 1))
        if saved_world != world:
            on_message(f"note: the run was trained by {saved_world} process(es), now {world}: the data order "
                       f"and noise differ from an uninterrupted run from here on")
    if trainer.is_main:
        with writing(out / ckpt.CONFIG_NAME):
            write_config(out, cfg, data)
    return trainer
