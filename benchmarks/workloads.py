"""The benchmark workloads and the data they train on.

Every workload is generated in-process from a fixed seed (no downloads):
``make_classification`` for the synthetic ones, ``load_digits`` for the small
real one. Features are standardized on the training split; 20% is held out
so that each contender's accuracy can be checked after its timed epochs.
"""
from dataclasses import dataclass, field

import numpy as np
from sklearn.datasets import load_digits, make_classification
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

SEED = 0
TEST_FRACTION = 0.2
DTYPES = ("float64", "float32")

# Shared hyperparameters: scikit-learn's defaults for Adam and the L2 penalty.
LEARNING_RATE = 1e-3
ALPHA = 1e-4
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-8


@dataclass(frozen=True)
class Workload:
    """One training problem: data shape, network shape and how it is timed.

    ``kind`` is "epoch" (seconds per training epoch), "lbfgs" (seconds per
    L-BFGS fit of ``max_iter`` iterations) or "predict" (rows per second).
    ``quick_samples`` replaces ``n_samples`` under ``--quick``; ``repeats``
    is the default number of timed runs per contender (``--repeats``
    overrides it for every workload). A timed run of an epoch workload is
    ``epochs_per_run`` back-to-back epochs (reported per epoch), so that
    millisecond epochs are timed as training runs them. One epoch after the
    2-thread settle pause measured the wake-up of sleeping worker threads
    instead: on this VM a worker woken after 0.12 s idle took milliseconds
    to run again (W5, 2 threads: 1.1 ms per epoch back to back, 5.7 ms one
    epoch after each pause; torch's and OpenBLAS's threads alike).
    """

    name: str
    description: str
    source: str  # "synthetic" or "digits"
    n_samples: int
    n_features: int
    hidden: tuple
    n_classes: int
    batch_size: int = 200
    kind: str = "epoch"
    quick_samples: int = None
    max_iter: int = 0  # L-BFGS iterations per fit
    quick_max_iter: int = 0
    repeats: int = 5
    epochs_per_run: int = 1

    def layer_units(self):
        return [self.n_features, *self.hidden, self.n_classes]


WORKLOADS = {
    w.name: w
    for w in [
        Workload("W1", "20k x 64 -> (100,) -> 10, batch 32", "synthetic",
                 20_000, 64, (100,), 10, batch_size=32, quick_samples=4_000,
                 epochs_per_run=10),
        Workload("W2", "20k x 64 -> (100,) -> 10, batch 200", "synthetic",
                 20_000, 64, (100,), 10, batch_size=200, quick_samples=4_000,
                 epochs_per_run=10),
        Workload("W3", "50k x 256 -> (256, 256) -> 10, batch 128", "synthetic",
                 50_000, 256, (256, 256), 10, batch_size=128, quick_samples=5_000),
        Workload("W4", "50k x 784 -> (1024, 1024) -> 10, batch 512", "synthetic",
                 50_000, 784, (1024, 1024), 10, batch_size=512, quick_samples=1_500,
                 # ~10 s epochs x 8 contenders: 3 repeats keep the full run
                 # near 15 minutes, and long epochs are the least noisy.
                 repeats=3),
        Workload("W5", "digits 1797 x 64 -> (100,) -> 10, batch 32", "digits",
                 1_797, 64, (100,), 10, batch_size=32, epochs_per_run=50),
        Workload("LBFGS", "digits -> (50,) -> 10, L-BFGS, fixed iterations, tol=0",
                 "digits", 1_797, 64, (50,), 10, kind="lbfgs",
                 max_iter=200, quick_max_iter=50),
        Workload("PREDICT", "predict on W3's model (256, 256), all test rows at once",
                 "synthetic", 50_000, 256, (256, 256), 10, batch_size=128,
                 kind="predict", quick_samples=5_000),
    ]
}


@dataclass
class Dataset:
    """Train/test split of one workload, standardized, in both dtypes."""

    X_train: dict  # dtype name -> C-contiguous (n_train, n_features)
    X_test: dict
    Y_train: dict  # dtype name -> one-hot (n_train, n_classes), C-contiguous
    y_train: np.ndarray  # integer labels
    y_test: np.ndarray
    classes: np.ndarray
    info: dict = field(default_factory=dict)

    @property
    def n_train(self):
        return self.y_train.shape[0]


def _raw_data(workload, n_samples):
    if workload.source == "digits":
        X, y = load_digits(return_X_y=True)
        return X, y
    # Half the features informative and a quarter redundant keeps the problem
    # learnable (a few epochs reach well above chance) without being trivial.
    n_informative = max(8, workload.n_features // 2)
    n_redundant = workload.n_features // 4
    return make_classification(
        n_samples=n_samples,
        n_features=workload.n_features,
        n_informative=n_informative,
        n_redundant=n_redundant,
        n_classes=workload.n_classes,
        n_clusters_per_class=2,
        class_sep=1.0,
        random_state=SEED,
    )


def make_dataset(workload, quick=False):
    """Generate, split, standardize and cast the data of ``workload``."""
    n_samples = workload.n_samples
    if quick and workload.quick_samples:
        n_samples = workload.quick_samples
    X, y = _raw_data(workload, n_samples)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_FRACTION, random_state=SEED, stratify=y
    )
    scaler = StandardScaler().fit(X_train)
    X_train = scaler.transform(X_train)
    X_test = scaler.transform(X_test)

    classes = np.unique(y_train)
    onehot = (y_train[:, None] == classes[None, :])
    data = Dataset(
        X_train={}, X_test={}, Y_train={},
        y_train=np.ascontiguousarray(y_train, dtype=np.int64),
        y_test=np.ascontiguousarray(y_test, dtype=np.int64),
        classes=classes,
    )
    for dtype in DTYPES:
        data.X_train[dtype] = np.ascontiguousarray(X_train, dtype=dtype)
        data.X_test[dtype] = np.ascontiguousarray(X_test, dtype=dtype)
        data.Y_train[dtype] = np.ascontiguousarray(onehot, dtype=dtype)
    data.info = {
        "n_train": int(X_train.shape[0]),
        "n_test": int(X_test.shape[0]),
        "n_features": int(X.shape[1]),
        "n_classes": int(classes.size),
    }
    return data
