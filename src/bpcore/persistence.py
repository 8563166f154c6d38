"""Safe saving and loading: arrays in safetensors, everything else as typed JSON.

A bpcore file is a valid safetensors file. Its tensors are every array of
the object (parameters, batch-norm running statistics, optimizer state,
labels, ...); its ``__metadata__`` holds four strings:

- ``format``: ``"bpcore"``; ``format_version``: ``"1"``;
- ``content``: the object as typed JSON (configuration, constructor
  parameters, fitted metadata), arrays referred to by tensor name;
- ``sha256``: SHA-256 over the content and every tensor's name, dtype, shape
  and bytes (length-prefixed, in name order).

Loading runs no code named by the file: JSON values decode through a fixed
set of tags, classes come from an explicit allow-list of bpcore classes, and
every network is rebuilt through its validating constructor after its sizes
were checked against the stored arrays (so no allocation exceeds what the
file holds). A truncated, corrupted, altered or hostile file raises a
``ValueError`` saying so.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import re
import struct
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:  # pragma: no cover - typing only
    from ._lbfgs import LBFGS
    from .callbacks import History
    from .estimators import MLPClassifier, MLPRegressor, _BaseMLP
    from .network import Network
    from .optimizers import Optimizer
    from .schedules import Schedule

#: A value of the typed JSON (what ``json.loads`` returns: any JSON value).
_Json = Any
_Class = TypeVar("_Class", bound=type)
#: The estimator classes ``load`` builds: every one is one of the drop-ins.
_EstimatorClass = Union["type[MLPClassifier]", "type[MLPRegressor]"]

FORMAT = "bpcore"
FORMAT_VERSION = 1

#: Estimator classes that ``load`` may build, by name (those bpcore defines).
ESTIMATOR_NAMES = ("MLPClassifier", "MLPRegressor", "NeuralNetClassifier",
                   "NeuralNetRegressor")

# Array dtypes stored as they are (safetensors' own types); str labels are
# stored as their UCS-4 code points (uint32).
_NUMERIC_DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                   "uint64", "float16", "float32", "float64")
_LABEL_BINARIZER_TYPES = ("binary", "multiclass", "multilabel-indicator", "continuous",
                          "continuous-multioutput", "multiclass-multioutput", "unknown")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own header limit


def _safetensors() -> ModuleType:
    try:
        import safetensors.numpy
    except ImportError as exc:  # a declared dependency: only a broken install lands here
        raise ImportError(
            "bpcore.save/load need the 'safetensors' package: pip install safetensors"
        ) from exc
    return safetensors.numpy


# -- the public functions ----------------------------------------------------

def save(obj: object, path: str | os.PathLike[str]) -> None:
    """Save a network or an estimator to ``path`` in bpcore's safe format.

    Parameters
    ----------
    obj : Network, MLPClassifier, MLPRegressor or a toolbox estimator
        Fitted or not. Estimators keep their constructor parameters, every
        fitted attribute, their network and their optimizer's state (so a
        loaded estimator resumes ``partial_fit`` and ``warm_start`` fits
        exactly where the saved one stood).
    path : str or os.PathLike
        The file to write (replaced atomically). ``.bpcore`` or
        ``.safetensors`` are good extensions: the file is a safetensors file.

    Raises
    ------
    ValueError
        For values the format cannot store safely: labels or parameters of
        arbitrary Python types (e.g. objects in ``classes_``), callables.

    See Also
    --------
    load : read the file back.

    Notes
    -----
    The arrays go to safetensors tensors; the configuration and fitted
    metadata to JSON in the safetensors header, with a format version and a
    SHA-256 checksum over the contents. Nothing in the file names code to
    run: :func:`load` looks classes up in a fixed allow-list.

    Examples
    --------
    >>> import os, tempfile, numpy as np, bpcore
    >>> net = bpcore.Network([3, 5, 2], batch_norm=True, random_state=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "net.bpcore")
    >>> bpcore.save(net, path)
    >>> same = bpcore.load(path)
    >>> X = np.ones((4, 3))
    >>> bool((same.forward(X) == net.forward(X)).all())
    True
    """
    st = _safetensors()
    enc = _Encoder()
    content = json.dumps({"object": enc.top(obj)}, sort_keys=True, separators=(",", ":"),
                         allow_nan=False)
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "content": content,
                "sha256": _digest(content, enc.tensors)}
    data = st.save(enc.tensors, metadata=metadata)
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load(path: str | os.PathLike[str]) -> Any:
    """Load a network or an estimator saved by :func:`save`.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save`.

    Returns
    -------
    obj : Network or estimator
        Equal to the saved object: the same parameters, buffers, fitted
        attributes and optimizer state, so predictions are bitwise equal.

    Raises
    ------
    ValueError
        If the file is not a bpcore file, is truncated, corrupted or altered
        (checksum mismatch), was written by a newer format version, or
        names anything outside bpcore's allow-list.

    Examples
    --------
    >>> import os, tempfile, bpcore
    >>> from sklearn.datasets import make_classification
    >>> X, y = make_classification(n_samples=50, random_state=0)
    >>> clf = bpcore.MLPClassifier((8,), tol=0.1, random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "clf.bpcore")
    >>> bpcore.save(clf, path)
    >>> bool((bpcore.load(path).predict_proba(X) == clf.predict_proba(X)).all())
    True
    """
    with open(os.fspath(path), "rb") as f:
        data = f.read()
    return loads(data)


def loads(data: bytes) -> Any:
    """:func:`load` from the bytes of a file (see :func:`load`).

    Examples
    --------
    >>> import os, tempfile, bpcore
    >>> path = os.path.join(tempfile.mkdtemp(), "net.bpcore")
    >>> bpcore.save(bpcore.Network([2, 1]), path)
    >>> bpcore.persistence.loads(open(path, "rb").read())
    Network([2, 1], activation='relu', output='identity', loss='squared_error', dtype='float64')
    """
    tensors, metadata = _read(bytes(data))
    try:
        content = json.loads(metadata["content"])
        if not isinstance(content, dict) or set(content) != {"object"}:
            raise ValueError("the content holds no bpcore object")
        return _Decoder(tensors).top(content["object"])
    except ValueError as exc:
        raise ValueError(f"invalid bpcore file: {exc}") from None
    except Exception as exc:  # noqa: BLE001 -- a hostile file must not escape as a crash
        raise ValueError(
            f"invalid bpcore file: its contents do not describe a valid bpcore object "
            f"({type(exc).__name__}: {exc})") from None


# -- container: safetensors + metadata + checksum ----------------------------

def _digest(content: str, tensors: Mapping[str, NDArray[Any]]) -> str:
    h = hashlib.sha256()

    def field(b: bytes) -> None:
        h.update(struct.pack("<Q", len(b)))
        h.update(b)

    field(f"{FORMAT}/{FORMAT_VERSION}".encode())
    field(content.encode("utf-8"))
    for name in sorted(tensors):
        arr = tensors[name]
        field(name.encode("utf-8"))
        field(arr.dtype.str.encode())
        field(json.dumps(list(arr.shape)).encode())
        field(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def _read(data: bytes) -> tuple[dict[str, NDArray[Any]], dict[str, str]]:
    """(tensors, metadata) of a bpcore file's bytes, checksum verified."""
    st = _safetensors()
    if len(data) < 8:
        raise ValueError(f"not a bpcore file: {len(data)} bytes is too short (truncated?)")
    n = struct.unpack("<Q", data[:8])[0]
    if n > min(len(data) - 8, _MAX_HEADER):
        raise ValueError("not a bpcore file or truncated: its header length "
                         f"({n} bytes) exceeds the file ({len(data)} bytes)")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ValueError("not a bpcore file, or corrupted: its header is not valid JSON") from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ValueError("not a bpcore file: the safetensors metadata has no "
                         "'format': 'bpcore' entry (corrupted, or saved by another tool)")
    if set(metadata) != {"format", "format_version", "content", "sha256"} or not all(
            isinstance(v, str) for v in metadata.values()):
        raise ValueError("corrupted bpcore file: unexpected metadata entries")
    version = metadata["format_version"]
    if not version.isdigit() or int(version) != FORMAT_VERSION:
        if version.isdigit() and int(version) > FORMAT_VERSION:
            raise ValueError(f"this file has bpcore format version {version}; this bpcore "
                             f"reads version {FORMAT_VERSION}: upgrade bpcore to load it")
        raise ValueError(f"corrupted bpcore file: bad format version {version!r}")
    try:
        tensors = st.load(data)
    except Exception as exc:  # noqa: BLE001 -- safetensors' own error type
        raise ValueError(f"corrupted or truncated bpcore file: safetensors refuses it ({exc})"
                         ) from None
    if _digest(metadata["content"], tensors) != metadata["sha256"]:
        raise ValueError("checksum mismatch: the bpcore file is corrupted or was altered "
                         "after saving")
    return tensors, metadata


# -- encoding -------------------------------------------------------------------

def _estimator_classes() -> dict[str, _EstimatorClass]:
    import bpcore
    from .estimators import _BaseMLP
    classes: dict[str, _EstimatorClass] = {}
    for name in ESTIMATOR_NAMES:
        cls = getattr(bpcore, name, None)
        if isinstance(cls, type) and issubclass(cls, _BaseMLP):
            classes[name] = cls
    return classes


def _optimizer_classes() -> dict[str, type[Optimizer] | type[LBFGS]]:
    from ._lbfgs import LBFGS
    from .optimizers import OPTIMIZERS
    classes: dict[str, type[Optimizer] | type[LBFGS]] = {
        cls.__name__: cls for cls in OPTIMIZERS.values()}
    classes["LBFGS"] = LBFGS
    return classes


def _schedule_classes() -> dict[str, type[Schedule]]:
    from .schedules import SCHEDULES, SklearnSchedule
    return {**SCHEDULES, "SklearnSchedule": SklearnSchedule}


def _known_class(classes: Mapping[str, _Class], name: _Json, kind: str) -> _Class:
    """The class a file names, from the registry of what bpcore loads."""
    if name not in classes:
        raise ValueError(f"unknown {kind} class {name!r}; bpcore loads only "
                         f"{', '.join(classes)}")
    return classes[name]


def _init_args(cls: Any) -> list[str]:  # any class: its __init__'s parameter names
    return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]


class _Encoder:
    """Python values -> typed JSON; arrays go to ``self.tensors``."""

    def __init__(self) -> None:
        self.tensors: dict[str, NDArray[Any]] = {}

    def array(self, arr: ArrayLike, where: str) -> dict[str, _Json]:
        arr = np.asarray(arr)
        ref: dict[str, _Json] = {"array": f"t{len(self.tensors)}"}
        if arr.dtype.kind == "O":
            flat = arr.ravel()
            if not all(isinstance(v, str) for v in flat):
                kinds = sorted({type(v).__name__ for v in flat if not isinstance(v, str)})
                raise ValueError(
                    f"{where} holds values of type {', '.join(kinds)} in an object array, "
                    "which bpcore.save cannot store safely; it stores numbers, bools and "
                    "str (labels as int, float, bool or str). Convert them (e.g. "
                    "y.astype(str)) or use pickle/skops for such models")
            arr = arr.astype(str) if arr.size else np.zeros(arr.shape, "<U1")
            ref["object"] = True
        if arr.dtype.kind == "U":
            width = arr.dtype.itemsize // 4
            ref["unicode"] = width
            arr = np.ascontiguousarray(arr).view(np.uint32).reshape(arr.shape + (width,))
        elif arr.dtype.name not in _NUMERIC_DTYPES:
            raise ValueError(
                f"{where} is an array of dtype {arr.dtype}, which bpcore.save cannot store; "
                f"it stores {', '.join(_NUMERIC_DTYPES)} and str arrays")
        self.tensors[ref["array"]] = np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<")))
        return ref

    def value(self, v: object, where: str) -> _Json:
        from ._lbfgs import LBFGS
        from .callbacks import History
        from .network import Network
        from .optimizers import Optimizer
        from .schedules import Schedule
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, int):
            return v
        if isinstance(v, float):
            return v if math.isfinite(v) else {"float": repr(v)}
        if isinstance(v, list):
            return [self.value(x, f"{where}[{i}]") for i, x in enumerate(v)]
        if isinstance(v, tuple):
            return {"tuple": [self.value(x, f"{where}[{i}]") for i, x in enumerate(v)]}
        if isinstance(v, dict):
            return {"dict": [[self.value(k, f"{where} key"), self.value(x, f"{where}[{k!r}]")]
                             for k, x in v.items()]}
        if isinstance(v, (np.ndarray, np.generic)):
            ref = self.array(v, where)
            if isinstance(v, np.generic):
                ref["scalar"] = True
            return ref
        if isinstance(v, np.dtype):
            if v.name not in _NUMERIC_DTYPES:
                raise ValueError(f"{where} is the dtype {v}, which bpcore.save cannot store")
            return {"dtype": v.name}
        if isinstance(v, np.random.RandomState):
            name, keys, pos, has_gauss, cached = v.get_state()
            return {"random_state": {"keys": self.array(keys, where), "pos": int(pos),
                                     "has_gauss": int(has_gauss),
                                     "cached_gaussian": self.value(float(cached), where)}}
        if isinstance(v, Network):
            return {"network": self.network(v)}
        if isinstance(v, (Optimizer, LBFGS)):
            return {"optimizer": self.optimizer(v, where)}
        if isinstance(v, Schedule) and type(v).__name__ in _schedule_classes():
            state = v.state_dict() if hasattr(v, "base_lr") else None
            return {"schedule": [type(v).__name__, self.value(v.get_config(), where),
                                 self.value(state, where)]}
        if isinstance(v, History):
            return {"history": self.value(dict(v.__dict__), where)}
        if type(v).__name__ == "LabelBinarizer":
            return {"label_binarizer": self.value(
                {k: v.__dict__[k] for k in ("neg_label", "pos_label", "sparse_output",
                                             "y_type_", "sparse_input_", "classes_")
                 if k in v.__dict__}, where)}
        raise ValueError(
            f"{where} is a {type(v).__module__}.{type(v).__qualname__}, which bpcore.save "
            "cannot store safely (it stores numbers, strings, arrays, lists, dicts and "
            "bpcore's own networks, optimizers and schedules); use pickle or skops for "
            "such an object")

    def network(self, net: Network) -> dict[str, _Json]:
        return {"config": self.value(net.get_config(), "network config"),
                "sklearn_gradient": bool(getattr(net, "_sklearn_gradient", False)),
                "params": self.array(net.params, "network params"),
                "buffers": self.array(net.buffers, "network buffers")}

    def optimizer(self, opt: Optimizer | LBFGS, where: str) -> dict[str, _Json]:
        cls = type(opt)
        if _optimizer_classes().get(cls.__name__) is not cls:
            raise ValueError(f"{where} is a {cls.__qualname__}, not one of bpcore's optimizers")
        init = {k: self.value(getattr(opt, k), f"{where}.{k}") for k in _init_args(cls)
                if k != "learning_rate"}
        out: dict[str, _Json] = {"class": cls.__name__, "init": init}
        from .optimizers import Optimizer
        if isinstance(opt, Optimizer):       # not LBFGS, which has no state
            out.update(lr=opt.learning_rate, t=int(opt.t),
                       mu_product=float(opt._config.mu_product),
                       state=self.value(opt.state, f"{where}.state"))
        return out

    def top(self, obj: object) -> dict[str, _Json]:
        from .network import Network
        if isinstance(obj, Network):
            return {"network": self.network(obj)}
        classes = _estimator_classes()
        name = type(obj).__name__
        if classes.get(name) is not type(obj):
            raise TypeError(
                f"bpcore.save takes a bpcore Network or one of the estimators "
                f"{', '.join(classes)}, got {type(obj).__module__}.{type(obj).__qualname__}")
        state = obj.__dict__
        if "_net" in state and hasattr(obj, "_sync_params"):
            obj._sync_params()      # arrays assigned to coefs_/intercepts_ reach the buffer
        params = obj.get_params(deep=False)
        net = state.get("_net")
        attributes = {}
        for key, v in state.items():
            # Callbacks (set_callbacks) are hooks of the fits to come, not
            # model state: not saved, as a file stores no code to run.
            if key in params or key == "_skl_callbacks":
                continue
            if net is not None and key in ("coefs_", "intercepts_") and _are_views(
                    v, getattr(net, key[:-1])):
                attributes[key] = {"views": key[:-1]}
                continue
            attributes[key] = self.value(v, f"{name}.{key}")
        return {"estimator": name,
                "params": {k: self.value(v, f"parameter {k}") for k, v in params.items()},
                "attributes": attributes}


def _are_views(value: object, views: Sequence[NDArray[Any]]) -> bool:
    return (isinstance(value, list) and len(value) == len(views)
            and all(a is b for a, b in zip(value, views)))


# -- decoding ---------------------------------------------------------------------

class _Decoder:
    """Typed JSON -> Python values, strictly: anything unexpected is a ValueError."""

    def __init__(self, tensors: Mapping[str, NDArray[Any]]) -> None:
        self.tensors = tensors

    def array(self, ref: _Json) -> Any:  # an ndarray, or a NumPy scalar
        if not isinstance(ref, dict) or not set(ref) <= {"array", "unicode", "object", "scalar"}:
            raise ValueError("malformed array reference")
        name = ref.get("array")
        if not isinstance(name, str) or name not in self.tensors:
            raise ValueError(f"the content refers to a missing tensor {name!r}")
        arr = np.array(self.tensors[name])      # a writable copy
        if "unicode" in ref:
            width = ref["unicode"]
            if (not isinstance(width, int) or isinstance(width, bool) or width < 1
                    or arr.dtype != np.uint32 or arr.ndim < 1 or arr.shape[-1] != width):
                raise ValueError("malformed str array")
            if (arr > 0x10FFFF).any() or ((arr >= 0xD800) & (arr < 0xE000)).any():
                raise ValueError("a str array holds invalid code points")
            arr = np.ascontiguousarray(arr).view(f"<U{width}").reshape(arr.shape[:-1])
            if ref.get("object", False) is True:
                out = np.empty(arr.shape, dtype=object)
                out[...] = arr.tolist() if arr.ndim else str(arr)
                arr = out
        elif "object" in ref:
            raise ValueError("malformed array reference")
        elif arr.dtype.name not in _NUMERIC_DTYPES:
            raise ValueError(f"unsupported tensor dtype {arr.dtype}")
        if ref.get("scalar", False) is True:
            if arr.ndim != 0:
                raise ValueError("malformed scalar")
            return arr[()]
        return arr

    def value(self, v: _Json, depth: int = 0) -> Any:
        if depth > 50:
            raise ValueError("the content is nested too deeply")
        if v is None or isinstance(v, (bool, str, int, float)):
            return v
        if isinstance(v, list):
            return [self.value(x, depth + 1) for x in v]
        if not isinstance(v, dict) or len(v) == 0:
            raise ValueError(f"malformed value {type(v).__name__}")
        if "array" in v:
            return self.array(v)
        if len(v) != 1:
            raise ValueError(f"malformed value with keys {sorted(v)}")
        (tag, x), = v.items()
        if tag == "float":
            if x not in ("nan", "inf", "-inf"):
                raise ValueError(f"malformed float {x!r}")
            return float(x)
        if tag == "tuple":
            return tuple(self.value(y, depth + 1) for y in _list(x))
        if tag == "dict":
            out = {}
            for pair in _list(x):
                k, y = _list(pair, 2)
                k = self.value(k, depth + 1)
                if not isinstance(k, (str, int, float, bool, tuple)) and k is not None:
                    raise ValueError("malformed dict key")
                out[k] = self.value(y, depth + 1)
            return out
        if tag == "dtype":
            if x not in _NUMERIC_DTYPES:
                raise ValueError(f"unsupported dtype {x!r}")
            return np.dtype(x)
        if tag == "random_state":
            return self.random_state(x)
        if tag == "network":
            return self.network(x)
        if tag == "optimizer":
            return self.optimizer(x)
        if tag == "schedule":
            return self.schedule(x, depth)
        if tag == "history":
            return self.history(x, depth)
        if tag == "label_binarizer":
            return self.label_binarizer(x, depth)
        raise ValueError(f"unknown value tag {tag!r}")

    def random_state(self, x: _Json) -> np.random.RandomState:
        _keys(x, {"keys", "pos", "has_gauss", "cached_gaussian"})
        keys = self.array(x["keys"])
        if keys.dtype != np.uint32 or keys.shape != (624,):
            raise ValueError(f"a RandomState needs 624 uint32 keys, the file stores "
                             f"{keys.shape} {keys.dtype}")
        # NumPy's set_state does not bound-check these: a position past the
        # key array makes the next draw read (and write) outside it.
        pos, has_gauss = _int(x["pos"]), _int(x["has_gauss"])
        cached = self.value(x["cached_gaussian"])
        if not 0 <= pos <= 624:
            raise ValueError(f"a RandomState position must be in [0, 624], got {pos}")
        if has_gauss not in (0, 1):
            raise ValueError(f"a RandomState's has_gauss must be 0 or 1, got {has_gauss}")
        if not isinstance(cached, float) or not math.isfinite(cached):
            raise ValueError(f"a RandomState's cached Gaussian must be a finite float, "
                             f"got {cached!r}")
        rs = np.random.RandomState()
        rs.set_state(("MT19937", keys, pos, has_gauss, cached))
        return rs

    def network(self, x: _Json) -> Network:
        from .network import Network
        _keys(x, {"config", "sklearn_gradient", "params", "buffers"})
        config = self.value(x["config"])
        if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
            raise ValueError("malformed network config")
        params, buffers = self.array(x["params"]), self.array(x["buffers"])
        # Check the sizes against the stored arrays before building anything:
        # a hostile config cannot make the constructor allocate more than the
        # file holds.
        n_params, n_buffers = _expected_sizes(config)
        if params.shape != (n_params,) or buffers.shape != (n_buffers,):
            raise ValueError(
                f"the network config needs {n_params} parameters and {n_buffers} buffer "
                f"values but the file stores {params.shape} and {buffers.shape}")
        if params.dtype.name != config.get("dtype") or buffers.dtype != params.dtype:
            raise ValueError(f"the network's dtype {config.get('dtype')!r} does not match "
                             f"its stored arrays ({params.dtype}, {buffers.dtype})")
        net = Network(**config, random_state=0)
        if x["sklearn_gradient"] is True:
            net._use_sklearn_gradient()
        elif x["sklearn_gradient"] is not False:
            raise ValueError("malformed network entry")
        if net.n_params != n_params or net.buffers.shape != (n_buffers,):
            raise ValueError("the network config does not match its stored arrays")
        net.params[...] = params
        net.buffers[...] = buffers
        return net

    def optimizer(self, x: _Json) -> Optimizer | LBFGS:
        if not isinstance(x, dict) or "class" not in x:
            raise ValueError("malformed optimizer")
        name = x["class"]
        cls = _known_class(_optimizer_classes(), name, "optimizer")
        allowed = set(_init_args(cls)) - {"learning_rate"}
        init = self.value({"dict": [[k, v] for k, v in _dict(x["init"]).items()]})
        if not set(init) <= allowed:
            raise ValueError(f"unexpected {name} arguments {sorted(set(init) - allowed)}")
        from ._lbfgs import LBFGS
        if issubclass(cls, LBFGS):          # _optimizer_classes()["LBFGS"]
            _keys(x, {"class", "init"})
            return cls(**init)
        _keys(x, {"class", "init", "lr", "t", "mu_product", "state"})
        # "lr" is the current rate, which a schedule may have brought to 0
        # (cosine annealing to eta_min=0): the setter's range, [0, inf). The
        # constructor takes a user's rate, > 0, so the rate is set after it.
        opt = cls(**init)
        opt.learning_rate = x["lr"]
        t, mu_product = _int(x["t"]), x["mu_product"]
        if t < 0:
            raise ValueError(f"the {name} step count must be >= 0, got {t}")
        # mu_product (NAdam's running product of momenta, 1.0 for the others)
        # is a product of factors in (0, 1].
        if (not isinstance(mu_product, (int, float)) or isinstance(mu_product, bool)
                or not 0.0 <= mu_product <= 1.0):
            raise ValueError(f"the {name} momentum product must be a number in [0, 1], "
                             f"got {mu_product!r}")
        opt._config.t = t
        opt._config.mu_product = float(mu_product)
        state = self.value(x["state"])
        if state is not None:
            n_state = opt._config.n_state
            if (not isinstance(state, np.ndarray) or state.ndim != 2
                    or state.dtype not in (np.float32, np.float64)
                    or state.shape[0] != n_state):
                raise ValueError(f"the {name} state must be a float32 or float64 array "
                                 f"of {n_state} rows, got {_describe(state)}")
            if not np.isfinite(state).all():
                raise ValueError(f"the {name} state holds non-finite values")
            state = np.ascontiguousarray(state)
        opt.state = state
        return opt

    def schedule(self, x: _Json, depth: int) -> Schedule:
        from .schedules import schedule_from_config
        name, config, state = _list(x, 3)
        classes = _schedule_classes()
        if name not in classes:
            raise ValueError(f"unknown schedule {name!r}")
        config = self.value(config, depth + 1)
        if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
            raise ValueError("malformed schedule config")
        if name == "SklearnSchedule":
            sched = classes[name](**config)
        else:
            sched = schedule_from_config(name, config)
        state = self.value(state, depth + 1)
        if state is not None:
            if not isinstance(state, dict):
                raise ValueError("malformed schedule state")
            sched.load_state_dict(state)
        return sched

    def history(self, x: _Json, depth: int) -> History:
        from .callbacks import History
        fields = self.value(x, depth + 1)
        if not isinstance(fields, dict) or not set(fields) <= set(History.FIELDS) | {"extra"}:
            raise ValueError("malformed History")
        h = History()
        for k, v in fields.items():
            if not isinstance(v, (list, dict)):
                raise ValueError("malformed History")
            setattr(h, k, v)
        return h

    def label_binarizer(self, x: _Json, depth: int) -> Any:  # scikit-learn's (untyped)
        from sklearn.preprocessing import LabelBinarizer
        fields = self.value(x, depth + 1)
        if not isinstance(fields, dict) or not set(fields) <= {
                "neg_label", "pos_label", "sparse_output", "y_type_", "sparse_input_",
                "classes_"}:
            raise ValueError("malformed LabelBinarizer")
        lb = LabelBinarizer(neg_label=fields.get("neg_label", 0),
                            pos_label=fields.get("pos_label", 1),
                            sparse_output=fields.get("sparse_output", False))
        if "y_type_" in fields:
            if fields["y_type_"] not in _LABEL_BINARIZER_TYPES:
                raise ValueError(f"unknown label type {fields['y_type_']!r}")
            if not isinstance(fields.get("classes_"), np.ndarray):
                raise ValueError("malformed LabelBinarizer classes_")
            lb.y_type_ = fields["y_type_"]
            if not isinstance(fields.get("sparse_input_", False), bool):
                raise ValueError("malformed LabelBinarizer sparse_input_")
            lb.sparse_input_ = fields.get("sparse_input_", False)
            lb.classes_ = fields["classes_"]
        return lb

    def top(self, x: _Json) -> Network | MLPClassifier | MLPRegressor:
        if isinstance(x, dict) and set(x) == {"network"}:
            return self.network(x["network"])
        _keys(x, {"estimator", "params", "attributes"})
        return self.estimator(x)

    def estimator(self, x: _Json) -> MLPClassifier | MLPRegressor:
        name = x["estimator"]
        cls = _known_class(_estimator_classes(), name, "estimator")
        params = {_attr_name(k): self.value(v) for k, v in _dict(x["params"]).items()}
        known = set(cls().get_params(deep=False))
        if not set(params) <= known:
            raise ValueError(f"unknown {name} parameters {sorted(set(params) - known)}")
        est = cls(**params)
        attrs = _dict(x["attributes"])
        state = {}
        if "_net" in attrs:
            state["_net"] = self.value(attrs["_net"])
            if not hasattr(state["_net"], "coefs"):
                raise ValueError("the estimator's _net is not a network")
        for key, v in attrs.items():
            key = _attr_name(key)
            if key in params:
                raise ValueError(f"attribute {key!r} clashes with a parameter")
            if key == "_net":
                continue
            if isinstance(v, dict) and set(v) == {"views"}:
                if v["views"] not in ("coefs", "intercepts"):
                    raise ValueError("malformed view entry")
                if "_net" not in state:
                    raise ValueError(f"{key} refers to the network's arrays, but the file "
                                     "holds no network")
                state[key] = list(getattr(state["_net"], v["views"]))
            else:
                state[key] = self.value(v)
        _check_fitted_state(cls, state)
        if "_net" in state:
            # A fitted estimator resumes training (partial_fit, warm_start)
            # with these parameters: refuse invalid ones now, with
            # scikit-learn's message, rather than at the next fit.
            est._validate_params()
            sizes = est.hidden_layer_sizes
            sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
            if not all(isinstance(n, (int, np.integer)) and not isinstance(n, (bool, np.bool_))
                       and n > 0 for n in sizes):
                raise ValueError(f"hidden_layer_sizes must be integers > 0, got {sizes}")
            scoring = getattr(est, "scoring", None)
            if isinstance(scoring, str):
                # The toolbox's constraint takes any str; its fit resolves
                # the name. Resolve it now (scikit-learn's message).
                from sklearn.metrics import get_scorer
                get_scorer(scoring)
        est.__dict__.update(state)
        from ._target import check_fitted_scaling
        check_fitted_scaling(est)       # the regressor's target scaling (issue 28)
        return est


# -- the fitted state, cross-checked before it reaches an estimator ---------------

#: Integer attributes of a fitted estimator, with their least value.
_COUNTS = {"n_features_in_": 1, "n_outputs_": 1, "n_layers_": 2, "n_iter_": 0, "t_": 0,
           "_epochs_trained": 0, "_no_improvement_count": 0, "_schedule_start": 0}
#: What every fitted estimator holds beside its network.
_FITTED = ("n_features_in_", "n_outputs_", "n_layers_", "out_activation_", "coefs_",
           "intercepts_", "_best_params", "_best_buffers", "n_iter_", "t_",
           "_epochs_trained")
#: ... and what a minibatch fit adds, which partial_fit and warm_start read.
_STOCHASTIC = ("_schedule", "_schedule_start", "loss_curve_", "_no_improvement_count",
               "best_loss_", "validation_scores_", "best_validation_score_")


def _describe(v: object) -> str:
    if isinstance(v, np.ndarray):
        return f"an array of shape {v.shape} and dtype {v.dtype}"
    return f"a {type(v).__name__}"


def _check_fitted_state(cls: type[_BaseMLP], state: dict[str, Any]) -> None:
    """Refuse fitted state that a fit of ``cls`` cannot have produced.

    A forged file (a hostile author recomputes the checksum) could otherwise
    load inconsistent state that predicts silently wrong (``classes_`` of 7
    labels beside a 3-output network) or breaks later with a misleading
    error (an attribute named ``predict`` shadowing the method).
    """
    from sklearn.base import ClassifierMixin
    from .callbacks import History
    from .network import Network
    from .optimizers import Optimizer
    from .schedules import Schedule
    name = cls.__name__
    others = [c for c in _estimator_classes().values() if c is not cls]
    for key in state:
        # Methods, properties, descriptors and class constants alike: an
        # instance attribute of that name would shadow them ...
        if hasattr(cls, key):
            raise ValueError(f"the attribute {key!r} would shadow {name}.{key}")
        # ... or fake them for duck typing (predict_proba on a regressor).
        owner = next((c for c in others if callable(getattr(c, key, None))), None)
        if owner is not None:
            raise ValueError(f"the attribute {key!r} would pose as the method "
                             f"{owner.__name__}.{key} on a {name}")
    for key, low in _COUNTS.items():
        if key in state:
            v = state[key]
            if not isinstance(v, (int, np.integer)) or isinstance(v, (bool, np.bool_)) \
                    or v < low:
                raise ValueError(f"{key} must be an integer >= {low}, got {v!r}")
    for key in ("loss_", "best_loss_", "best_validation_score_"):
        v = state.get(key)
        if v is not None and (not isinstance(v, (float, int, np.floating, np.integer))
                              or isinstance(v, (bool, np.bool_))):
            raise ValueError(f"{key} must be a number, got {_describe(v)}")
    for key in ("loss_curve_", "validation_scores_"):
        v = state.get(key)
        if v is not None and (not isinstance(v, list) or not all(
                isinstance(a, (float, int, np.floating, np.integer))
                and not isinstance(a, (bool, np.bool_)) for a in v)):
            raise ValueError(f"{key} must be a list of numbers")
    for key, kind in (("_random_state", np.random.RandomState), ("_optimizer", Optimizer),
                      ("_schedule", Schedule), ("history_", History)):
        if key in state and not isinstance(state[key], kind) and not (
                key == "_schedule" and state[key] is None):
            raise ValueError(f"{key} must be a {kind.__name__}, got {_describe(state[key])}")
    net = state.get("_net")
    if net is None:
        # Without a network the estimator is unfitted, so nothing may look
        # fitted: scikit-learn's check_is_fitted takes any attribute ending
        # in "_" as proof of a fit, and predict would then fail further on
        # (a forged file with only an 'x_': AttributeError on coefs_).
        fitted = sorted(k for k in state
                        if k in (*_FITTED, "classes_", "_label_binarizer", "_optimizer")
                        or (k.endswith("_") and not k.startswith("__")))
        if fitted:
            raise ValueError(f"the file holds the fitted attributes {fitted} but no network")
        return
    if not isinstance(net, Network):
        raise ValueError("the estimator's _net is not a network")
    missing = [k for k in _FITTED + (_STOCHASTIC if "_optimizer" in state else ())
               if k not in state]
    if missing:
        raise ValueError(f"a fitted {name} needs the attributes {missing}")
    sizes = list(net.layer_sizes)
    for key, want in (("n_features_in_", sizes[0]), ("n_outputs_", sizes[-1]),
                      ("n_layers_", len(sizes)), ("out_activation_", net.output)):
        if state[key] != want:
            raise ValueError(f"{key} is {state[key]!r} but the network's is {want!r}")
    for key, views in (("coefs_", net.coefs), ("intercepts_", net.intercepts)):
        v = state[key]
        if not isinstance(v, list) or [np.shape(a) for a in v] != [a.shape for a in views] \
                or not all(isinstance(a, np.ndarray) and a.dtype.kind == "f" for a in v):
            raise ValueError(f"{key} must be float arrays of the shapes "
                             f"{[a.shape for a in views]} of the network")
    for key, like in (("_best_params", net.params), ("_best_buffers", net.buffers)):
        v = state[key]
        if not isinstance(v, np.ndarray) or v.shape != like.shape or v.dtype != like.dtype:
            raise ValueError(f"{key} must be an array of shape {like.shape} and dtype "
                             f"{like.dtype} (the network's), got {_describe(v)}")
    opt = state.get("_optimizer")
    if opt is not None and getattr(opt, "state", None) is not None and (
            opt.state.shape[1] != net.n_params or opt.state.dtype != net.dtype):
        raise ValueError(f"the optimizer's state is for {opt.state.shape[1]} "
                         f"{opt.state.dtype} parameters, the network has {net.n_params} "
                         f"{net.dtype}")
    if issubclass(cls, ClassifierMixin):
        _check_classes(state, sizes[-1])


def _check_classes(state: Mapping[str, Any], n_outputs: int) -> None:
    from sklearn.preprocessing import LabelBinarizer
    classes, lb = state.get("classes_"), state.get("_label_binarizer")
    if not isinstance(classes, np.ndarray) or classes.ndim != 1 or classes.size == 0:
        raise ValueError(f"classes_ must be a non-empty 1-d array, got {_describe(classes)}")
    if not isinstance(lb, LabelBinarizer) or not hasattr(lb, "classes_"):
        raise ValueError("a fitted classifier needs a fitted _label_binarizer")
    if (lb.neg_label, lb.pos_label, lb.sparse_output) != (0, 1, False):
        raise ValueError("the _label_binarizer must have neg_label=0, pos_label=1 and "
                         "sparse_output=False, as a fit makes it")
    if lb.sparse_input_ and lb.y_type_ != "multilabel-indicator":
        raise ValueError("only multilabel targets come as a sparse matrix "
                         "(_label_binarizer.sparse_input_)")
    if not (lb.classes_.shape == classes.shape and (lb.classes_ == classes).all()):
        raise ValueError("classes_ differs from the _label_binarizer's classes_")
    if len(np.unique(classes)) != classes.size:
        raise ValueError("classes_ holds repeated labels")
    if lb.y_type_ == "binary":
        ok = n_outputs == 1 and classes.size <= 2
    elif lb.y_type_ in ("multiclass", "multilabel-indicator"):
        ok = n_outputs == classes.size
    else:
        raise ValueError(f"a classifier cannot have been fitted on {lb.y_type_!r} targets")
    if not ok:
        raise ValueError(f"{classes.size} classes ({lb.y_type_}) do not fit a network of "
                         f"{n_outputs} outputs")


def _expected_sizes(config: Mapping[str, Any]) -> tuple[int, int]:
    """(n_params, n_buffers) of a Network config, from its sizes alone."""
    sizes = config.get("layer_sizes")
    if (not isinstance(sizes, list) or len(sizes) < 2 or len(sizes) > 10_000
            or not all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s for s in sizes)):
        raise ValueError("malformed layer_sizes")
    n_hidden = len(sizes) - 2
    bn = config.get("batch_norm", False)
    flags = [bool(bn)] * n_hidden if isinstance(bn, bool) else bn
    if not isinstance(flags, list) or len(flags) != n_hidden:
        raise ValueError("malformed batch_norm")
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    n_params += sum(sizes[i + 1] for i in range(n_hidden) if flags[i] is True)
    n_buffers = sum(2 * sizes[i + 1] for i in range(n_hidden) if flags[i] is True)
    return n_params, n_buffers


def _attr_name(key: object) -> str:
    if not isinstance(key, str) or not _NAME.match(key) or key.startswith("__"):
        raise ValueError(f"invalid attribute name {key!r}")
    return key


def _keys(x: object, expected: set[str], exact: bool = True) -> None:
    if not isinstance(x, dict) or (set(x) != expected if exact else not expected <= set(x)):
        raise ValueError(f"malformed entry: expected the keys {sorted(expected)}")


def _dict(x: object) -> dict[Any, Any]:
    if not isinstance(x, dict):
        raise ValueError("malformed entry: expected an object")
    return x


def _list(x: object, n: int | None = None) -> list[Any]:
    if not isinstance(x, list) or (n is not None and len(x) != n):
        raise ValueError("malformed entry: expected a list")
    return x


def _int(x: object) -> int:
    if not isinstance(x, int) or isinstance(x, bool):
        raise ValueError(f"malformed integer {x!r}")
    return x
