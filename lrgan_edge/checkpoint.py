"""Checkpoints (DESIGN §7): one safetensors file per run, written atomically, no pickle.

`RUN_DIR/checkpoint.safetensors` holds every tensor (generator, its EMA, discriminators, the
optimizer moments, random states, the metadata bank) under a prefix, and in its header the
resolved config and the training state as JSON. A run directory also has `config.json` (the
same config, for people), `log.jsonl` and `samples/`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import RunConfig
from .errors import CheckpointError, ConfigError
from .generator import Generator

CHECKPOINT_NAME = "checkpoint.safetensors"
CONFIG_NAME = "config.json"
FORMAT = "lrgan-edge-checkpoint"
FORMAT_VERSION = "1"


def checkpoint_path(path: str | Path) -> Path:
    path = Path(path)
    return path / CHECKPOINT_NAME if path.is_dir() else path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it: never a torn file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)                    # the rename itself survives a power cut
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:        # some file systems cannot fsync a directory; the rename is still atomic
        pass
    finally:
        os.close(fd)


def save_checkpoint(path: Path, config: RunConfig, tensors: dict[str, torch.Tensor], state: dict[str, Any],
                    extra: dict[str, Any] | None = None) -> None:
    from safetensors.torch import save
    from . import __version__
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "package_version": __version__,
              "config": config.to_json(), "state": json.dumps(state)}
    header.update({k: json.dumps(v) for k, v in (extra or {}).items()})
    blob = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=header)
    atomic_write_bytes(path, blob)


def read_checkpoint(path: str | Path) -> tuple[RunConfig, dict[str, torch.Tensor], dict[str, Any], dict[str, str]]:
    """(config, tensors, training state, raw header) of a run directory or checkpoint file."""
    from safetensors import SafetensorError
    from safetensors.torch import load
    file = checkpoint_path(path)
    if not Path(path).exists():
        raise CheckpointError(f"{path} does not exist; pass a run directory written by `lrgan-edge train`")
    if not file.is_file():
        raise CheckpointError(f"no checkpoint in {path} (expected {CHECKPOINT_NAME}); train first or pass a run directory")
    data = file.read_bytes()
    try:
        tensors = load(data)
        header = _header(data)
    except (SafetensorError, ValueError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint {file} is truncated or not a safetensors file ({exc}); "
                              f"restore it or resume from another run") from None
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{file} is not an lrgan-edge checkpoint (a safetensors file without our header)")
    if header.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{file} has checkpoint format {header.get('format_version')}; this lrgan-edge reads "
                              f"format {FORMAT_VERSION}")
    try:
        config = RunConfig.from_dict(json.loads(header["config"]))
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint {file} holds a config this version cannot read: {exc}") from None
    return config, tensors, json.loads(header.get("state", "{}")), header


def _header(data: bytes) -> dict[str, str]:
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + n]).get("__metadata__", {})


def prefixed(prefix: str, module_or_state) -> dict[str, torch.Tensor]:
    state = module_or_state.state_dict() if isinstance(module_or_state, nn.Module) else module_or_state
    return {f"{prefix}.{k}": v for k, v in state.items()}


def unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    p = prefix + "."
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


def load_module_state(module: nn.Module, state: dict[str, torch.Tensor], what: str, file: Path) -> None:
    """Strict load with a one-line error when the checkpoint and the config disagree."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad_shape = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or bad_shape:
        detail = "; ".join(f"{label}: {', '.join(keys[:3])}{' …' if len(keys) > 3 else ''}"
                           for label, keys in (("missing", missing), ("unexpected", unexpected),
                                               ("shape differs", bad_shape)) if keys)
        raise CheckpointError(f"{what} weights in {file} do not match its config ({detail}); "
                              f"the checkpoint was written by another model")
    module.load_state_dict(state)


def flatten_optimizer(prefix: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Optimizer state as flat tensors plus a JSON-able description (param groups)."""
    sd = optimizer.state_dict()
    tensors = {f"{prefix}.{pid}.{name}": value for pid, st in sd["state"].items() for name, value in st.items()}
    return tensors, {"param_groups": sd["param_groups"]}


def unflatten_optimizer(prefix: str, tensors: dict[str, torch.Tensor], info: dict) -> dict:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in unprefixed(prefix, tensors).items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    return {"state": state, "param_groups": info["param_groups"]}


def load_generator(path: str | Path, device: str | torch.device = "cpu", ema: bool = True) -> Generator:
    """The generator of a run (EMA weights if present), in eval mode, with its meta bank attached."""
    config, tensors, _, header = read_checkpoint(path)
    G = Generator(config.model)
    which = "G_ema" if ema and any(k.startswith("G_ema.") for k in tensors) else "G"
    load_module_state(G, unprefixed(which, tensors), "generator", checkpoint_path(path))
    G.meta_bank = tensors.get("meta_bank")
    G.metadata_source = config.train.metadata
    return G.to(device).eval()
