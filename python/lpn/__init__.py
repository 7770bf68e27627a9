"""lpn: the Local Pheromone Network — sparse, local layers that learn online without automatic
differentiation, with a Rust engine."""

from . import _lpn
from ._lpn import get_num_threads, set_num_threads
from .config import LayerSpec, LearnConfig
from .network import Layer, LowFanInWarning, Network, radius_for_fan_in
from .sweeps import sweep

__version__: str = _lpn.__version__

__all__ = [
    "LayerSpec",
    "LearnConfig",
    "Layer",
    "Network",
    "LowFanInWarning",
    "radius_for_fan_in",
    "sweep",
    "get_num_threads",
    "set_num_threads",
    "__version__",
]

