"""lpn: the Local Pheromone Network — sparse, local layers that learn online without automatic
differentiation, with a Rust engine."""

from . import _lpn
from .checkpoint import CheckpointWarning
from .config import LayerSpec, LearnConfig
from .memory import RecallMemory
from .network import MAX_REPLAY, Layer, LowFanInWarning, Network, radius_for_fan_in
from .sweeps import sweep
from .threads import get_num_threads, set_num_threads

__version__: str = _lpn.__version__


def _honour_omp_num_threads() -> None:
    # Worker pools (joblib/loky, GridSearchCV(n_jobs=...)) cap their workers' threads through
    # OMP_NUM_THREADS; rayon reads only RAYON_NUM_THREADS, so without this each worker would
    # start one lpn thread per core. Results do not depend on the thread count.
    import os

    if os.environ.get("RAYON_NUM_THREADS"):
        return
    v = os.environ.get("OMP_NUM_THREADS", "").strip()
    if v.isdigit() and int(v) > 0:
        set_num_threads(int(v))


_honour_omp_num_threads()

__all__ = [
    "CheckpointWarning",
    "LayerSpec",
    "MAX_REPLAY",
    "LearnConfig",
    "Layer",
    "Network",
    "RecallMemory",
    "LowFanInWarning",
    "radius_for_fan_in",
    "sweep",
    "get_num_threads",
    "set_num_threads",
    "__version__",
]

