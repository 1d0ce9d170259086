"""The library's exception types. The CLI turns each into one line and a non-zero exit."""


class LrganError(Exception):
    """Base of every error the library raises on bad input; its message names the fix."""


class ConfigError(LrganError):
    """An unknown preset or config key, or a value outside what is accepted."""


class DataError(LrganError):
    """A data path that is missing, empty or holds no usable image."""


class CheckpointError(LrganError):
    """A checkpoint that is missing, truncated, foreign or does not match its config."""


class MetadataError(LrganError):
    """Metadata encoder weights that cannot be had, or an unknown metadata source."""


class RunDirError(LrganError):
    """An output directory that already holds another run or cannot be written."""


class TrainingError(LrganError):
    """A training run that cannot go on (for example a non-finite loss)."""


class ExportError(LrganError):
    """An export that cannot be made, or whose numbers drift from PyTorch."""


class MetricsError(LrganError):
    """A quality metric that cannot be computed: missing Inception weights or package, too few images."""
