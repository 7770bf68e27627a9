"""lpn: the Local Pheromone Network — sparse, local layers that learn online without automatic
differentiation, with a Rust engine."""

from . import _lpn
from .checkpoint import CheckpointWarning
from .config import LayerSpec, LearnConfig
from .network import MAX_REPLAY, Layer, Network
from .threads import get_num_threads, set_num_threads

__version__: str = _lpn.__version__

__all__ = [
    "CheckpointWarning",
    "LayerSpec",
    "MAX_REPLAY",
    "LearnConfig",
    "Layer",
    "Network",
    "get_num_threads",
    "set_num_threads",
    "__version__",
]
