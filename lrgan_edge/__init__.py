"""lrgan-edge: the Lightweight Long-Range GAN, from training to an app on a phone."""

__version__ = "0.1.0"

from .config import PRESETS, ModelConfig, RunConfig, TrainConfig, get_preset  # noqa: E402
from .errors import LrganError  # noqa: E402
from .generator import Generator, build_generator, count_parameters  # noqa: E402
from .lrm import LongRangeModule  # noqa: E402

__all__ = ["PRESETS", "ModelConfig", "RunConfig", "TrainConfig", "get_preset", "LrganError", "Generator",
           "build_generator", "count_parameters", "LongRangeModule", "load_generator", "__version__"]


def load_generator(path, device="cpu", ema=True):
    """A trained generator from a run directory or checkpoint file: eval mode, EMA weights if any."""
    from .checkpoint import load_generator as _load
    return _load(path, device=device, ema=ema)
