"""lpn: the Local Pheromone Network — sparse, local layers that learn online without automatic
differentiation, with a Rust engine."""

from . import _lpn
from ._lpn import get_num_threads, set_num_threads
from .config import LayerSpec, LearnConfig
from .memory import RecallMemory
from .network import Layer, Network

__version__: str = _lpn.__version__

__all__ = [
    "LayerSpec",
    "LearnConfig",
    "Layer",
    "Network",
    "RecallMemory",
    "get_num_threads",
    "set_num_threads",
    "__version__",
]
