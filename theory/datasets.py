"""Classification data sets for the general-input theory (THEORY §1–2, issue 5).

A :class:`Dataset` holds P training inputs ordered in class blocks (the
convention of :class:`theory.spec.ModelSpec`), the class sizes P_c, test
inputs with their labels, the original class labels and a description.
``Dataset.spec(...)`` turns it into a :class:`~theory.spec.ModelSpec` with
``inputs`` set, so K0 = X Xᵀ/N0 is the input kernel of THEORY §2.

Sources:

* :func:`load_digits_dataset`: scikit-learn's 8×8 digits (1797 images, ships
  with scikit-learn, no download). scikit-learn is an optional dependency and
  is imported only here.
* :func:`load_array_dataset`: a user's ``.npz`` (keys ``x``/``y``, ``X``/``Y``,
  or the MNIST-style ``x_train, y_train, x_test, y_test``), an MNIST idx file
  pair (``*-images-idx3-ubyte[.gz]`` with its ``*-labels-idx1-ubyte[.gz]``)
  or a folder with the four standard MNIST idx files.
* :func:`gaussian_clusters`: synthetic classes with tunable overlap.

Standardisation (fitted on the training inputs only, applied to both sets):
``"pixel"`` z-scores every input coordinate (coordinates constant on the
training set are centred and left unscaled), ``"global"`` subtracts the
overall mean and divides by the overall standard deviation, ``"none"``
keeps the raw values. With ``"pixel"`` or ``"global"`` the mean of
K0_μμ = |x_μ|²/N0 over the training set is 1 (up to constant coordinates).

Errors are :class:`~theory.spec.SpecError` naming the parameter: a missing
file, mismatched shapes, fewer than two classes, too few examples per class.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import gzip
from pathlib import Path

import numpy as np

from theory.jsonio import jsonable

from theory.spec import ModelSpec, SpecError

__all__ = ["Dataset", "load_digits_dataset", "load_array_dataset", "gaussian_clusters", "read_idx",
           "parse_classes", "STANDARDIZE"]

STANDARDIZE = ("pixel", "global", "none")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Training inputs in class blocks, test inputs and labels.

    Attributes
    ----------
    train_inputs : (P, N0) float64, rows ordered by class (blocks of ``class_sizes``)
    class_sizes : tuple of P_c
    test_inputs : (n_test, N0) float64, sorted by class as well
    test_labels : (n_test,) int in 0..m−1 (index into ``classes``)
    classes : tuple of the original labels of the m classes
    description : str
    """

    train_inputs: np.ndarray
    class_sizes: tuple
    test_inputs: np.ndarray
    test_labels: np.ndarray
    classes: tuple
    description: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        X = np.ascontiguousarray(self.train_inputs, dtype=np.float64)
        Xs = np.ascontiguousarray(self.test_inputs, dtype=np.float64)
        yl = np.asarray(self.test_labels, dtype=np.int64)
        sizes = tuple(int(s) for s in self.class_sizes)
        if X.ndim != 2 or Xs.ndim != 2:
            raise SpecError(f"train and test inputs must be 2-D arrays (got shapes {X.shape}, {Xs.shape})")
        if X.shape[1] != Xs.shape[1]:
            raise SpecError(f"train inputs have {X.shape[1]} features but test inputs {Xs.shape[1]}; they must agree")
        if sum(sizes) != X.shape[0]:
            raise SpecError(f"class_sizes {sizes} add up to {sum(sizes)} but there are {X.shape[0]} training inputs")
        if len(sizes) < 2:
            raise SpecError(f"a classification data set needs at least 2 classes (got {len(sizes)})")
        if len(self.classes) != len(sizes):
            raise SpecError(f"classes {self.classes} and class_sizes {sizes} must have the same length")
        if yl.shape != (Xs.shape[0],) or (yl.size and (yl.min() < 0 or yl.max() >= len(sizes))):
            raise SpecError(f"test_labels must be {Xs.shape[0]} integers in 0..{len(sizes) - 1}")
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Xs))):
            raise SpecError("inputs must be finite (found NaN or inf)")
        for name, v in (("train_inputs", X), ("test_inputs", Xs), ("test_labels", yl)):
            v.setflags(write=False)
            object.__setattr__(self, name, v)
        object.__setattr__(self, "class_sizes", sizes)
        object.__setattr__(self, "classes", tuple(self.classes))

    @property
    def m(self) -> int:
        return len(self.class_sizes)

    @property
    def P(self) -> int:
        return int(sum(self.class_sizes))

    @property
    def n_test(self) -> int:
        return int(self.test_inputs.shape[0])

    @property
    def train_labels(self) -> np.ndarray:
        return np.repeat(np.arange(self.m), self.class_sizes)

    @property
    def test_targets(self) -> np.ndarray:
        """One-hot targets of the test inputs (n_test × m)."""
        return np.eye(self.m)[self.test_labels]

    def spec(self, nonlinearity: str = "relu", sigma_w: float = 1.0, sigma_a: float = 1.0,
             temperature: float = 0.05) -> ModelSpec:
        """The :class:`ModelSpec` of a one-hidden-layer network trained on this set."""
        return ModelSpec(nonlinearity=nonlinearity, sigma_w=sigma_w, sigma_a=sigma_a, temperature=temperature,
                         class_sizes=self.class_sizes, inputs=self.train_inputs)

    def to_dict(self) -> dict:
        return {"description": self.description, "classes": [jsonable(c) for c in self.classes],
                "class_sizes": list(self.class_sizes), "n_test": self.n_test,
                "n_features": int(self.train_inputs.shape[1]), **self.meta}


# ----------------------------------------------------------------------------- helpers
def parse_classes(value) -> tuple | None:
    """Class labels from '0,1,2' or a sequence (None: all classes); integers where possible."""
    if value is None:
        return None
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
        out = []
        for p in parts:
            try:
                out.append(int(p))
            except ValueError:
                out.append(p)
        value = out
    vals = tuple(value)
    if len(vals) < 2:
        raise SpecError(f"classes must list at least 2 distinct labels, e.g. '0,1,2' (got {vals!r})")
    if len(set(vals)) != len(vals):
        raise SpecError(f"classes must be distinct (got {vals!r})")
    return vals


def _check_count(name: str, value, allow_none: bool) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise SpecError(f"{name} must be an integer >= 1{' or None' if allow_none else ''} (got {value!r})")
    return int(value)


def _standardize(X: np.ndarray, Xs: np.ndarray, how: str):
    if how not in STANDARDIZE:
        raise SpecError(f"standardize must be one of {STANDARDIZE} (got {how!r})")
    if how == "none":
        return X, Xs
    if how == "pixel":
        mu, sd = X.mean(axis=0), X.std(axis=0)
        sd = np.where(sd > 1e-12 * max(float(sd.max()), 1e-300), sd, 1.0)
    else:
        mu, sd = X.mean(), X.std()
        if sd <= 0:
            raise SpecError("standardize='global': the training inputs are constant")
    return (X - mu) / sd, (Xs - mu) / sd


def _split(X, y, classes, train_per_class, test_per_class, standardize, seed, description, source_test=None):
    """Pick ``train_per_class`` training and ``test_per_class`` (or the rest) test examples per class.

    ``source_test`` = (X_test, y_test): test examples come from there instead of the rest of (X, y).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim < 2:
        raise SpecError(f"inputs must have one row per example (got shape {X.shape})")
    X = X.reshape(X.shape[0], -1)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise SpecError(f"labels must be a vector with one entry per input: got {y.shape} labels for "
                        f"{X.shape[0]} inputs")
    train_per_class = _check_count("train_per_class", train_per_class, False)
    test_per_class = _check_count("test_per_class", test_per_class, True)
    present = np.unique(y)
    if classes is None:
        classes = tuple(jsonable(c) for c in present)
    classes = parse_classes(classes)
    missing = [c for c in classes if c not in set(present.tolist())]
    if missing:
        raise SpecError(f"classes {missing} do not occur in the labels (present: {present.tolist()})")
    rng = np.random.default_rng(seed)
    tr, te, tel = [], [], []
    if source_test is not None:
        Xt, yt = np.asarray(source_test[0], dtype=np.float64), np.asarray(source_test[1])
        Xt = Xt.reshape(Xt.shape[0], -1)
        if Xt.shape[1] != X.shape[1]:
            raise SpecError(f"test inputs have {Xt.shape[1]} features but training inputs {X.shape[1]}")
        if yt.ndim != 1 or yt.shape[0] != Xt.shape[0]:
            raise SpecError(f"test labels: got {yt.shape} labels for {Xt.shape[0]} test inputs")
    for k, c in enumerate(classes):
        idx = rng.permutation(np.flatnonzero(y == c))
        need = train_per_class + (1 if source_test is None and test_per_class is None else 0)
        if source_test is None and test_per_class is not None:
            need = train_per_class + test_per_class
        if idx.size < need:
            raise SpecError(f"class {c!r} has {idx.size} examples, fewer than the {need} needed "
                            f"(train_per_class {train_per_class}, test_per_class {test_per_class})")
        tr.append(X[idx[:train_per_class]])
        if source_test is None:
            rest = idx[train_per_class:]
            rest = rest if test_per_class is None else rest[:test_per_class]
            te.append(X[rest])
        else:
            tidx = rng.permutation(np.flatnonzero(yt == c))
            if test_per_class is not None:
                if tidx.size < test_per_class:
                    raise SpecError(f"class {c!r} has {tidx.size} test examples, fewer than test_per_class "
                                    f"{test_per_class}")
                tidx = tidx[:test_per_class]
            if tidx.size == 0:
                raise SpecError(f"class {c!r} has no test examples")
            te.append(Xt[tidx])
        tel.append(np.full(te[-1].shape[0], k))
    Xtr, Xte = _standardize(np.concatenate(tr), np.concatenate(te), standardize)
    return Dataset(train_inputs=Xtr, class_sizes=tuple([train_per_class] * len(classes)), test_inputs=Xte,
                   test_labels=np.concatenate(tel), classes=classes,
                   description=f"{description}, classes {list(classes)}, {train_per_class} train per class, "
                               f"standardize {standardize}",
                   meta={"standardize": standardize, "seed": seed})


# ----------------------------------------------------------------------------- digits
def load_digits_dataset(classes=(0, 1, 2), train_per_class: int = 30, test_per_class: int | None = None,
                        standardize: str = "pixel", seed: int = 0) -> Dataset:
    """scikit-learn's 8×8 digits (N0 = 64, about 180 images per class), a class subset.

    ``test_per_class=None`` uses all remaining images of each class as test set.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # optional dependency
        raise SpecError("the digits data set needs scikit-learn (pip install scikit-learn), "
                        "or pass your own data with --data PATH (.npz or MNIST idx)") from None
    d = load_digits()
    return _split(d.data, d.target, classes, train_per_class, test_per_class, standardize, seed, "sklearn digits")


# ----------------------------------------------------------------------------- files
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read an idx file (the MNIST format, optionally gzip-compressed).

    Header: two zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions d, then d big-endian uint32 sizes.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"data file {str(path)!r} does not exist")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise SpecError(f"{str(path)!r} is not an idx file (bad magic number)")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise SpecError(f"{str(path)!r}: truncated idx header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    n = int(np.prod(shape)) if shape else 0
    body = raw[4 + 4 * ndim:]
    if len(body) != n * dtype.itemsize:
        raise SpecError(f"{str(path)!r}: header says shape {shape} ({n * dtype.itemsize} bytes) "
                        f"but the file holds {len(body)} bytes")
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(np.float64 if dtype.kind == "f" else np.int64)


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise SpecError(f"folder {str(folder)!r} has no {stem}[.gz] (expected the four MNIST idx files)")


def _load_arrays(path: Path):
    """(X, y, test or None) from an npz, an idx images file or an MNIST folder."""
    if path.is_dir():
        X, y = read_idx(_find(path, "train-images-idx3-ubyte")), read_idx(_find(path, "train-labels-idx1-ubyte"))
        Xt, yt = read_idx(_find(path, "t10k-images-idx3-ubyte")), read_idx(_find(path, "t10k-labels-idx1-ubyte"))
        return X, y, (Xt, yt)
    if not path.is_file():
        raise SpecError(f"data file {str(path)!r} does not exist")
    if path.suffix == ".npz":
        try:
            z = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise SpecError(f"cannot read {str(path)!r} as .npz ({exc})") from None
        keys = set(z.files)
        if {"x_train", "y_train", "x_test", "y_test"} <= keys:
            return z["x_train"], z["y_train"], (z["x_test"], z["y_test"])
        for kx, ky in (("x", "y"), ("X", "Y"), ("X", "y")):
            if {kx, ky} <= keys:
                return z[kx], z[ky], None
        raise SpecError(f"{str(path)!r} must contain arrays x and y (or X and Y, or x_train, y_train, x_test, "
                        f"y_test); found {sorted(keys)}")
    name = path.name
    if "idx3" in name or "images" in name:
        lab = path.with_name(name.replace("images", "labels").replace("idx3", "idx1"))
        if not lab.is_file():
            raise SpecError(f"labels file {str(lab)!r} for {str(path)!r} does not exist")
        return read_idx(path), read_idx(lab), None
    raise SpecError(f"data file {str(path)!r}: expected a .npz, an idx images file (*images-idx3-ubyte[.gz]) "
                    "or a folder with the MNIST idx files")


def load_array_dataset(path, classes=None, train_per_class: int = 30, test_per_class: int | None = None,
                       standardize: str = "pixel", seed: int = 0) -> Dataset:
    """A data set from the user's files (see the module docstring for the accepted layouts).

    Inputs of any shape per example (e.g. 28×28 images) are flattened. With a single (x, y)
    pair the test examples are the remaining ones of each class; with separate test arrays
    they come from those.
    """
    path = Path(path)
    X, y, test = _load_arrays(path)
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot labels
        y = np.argmax(y, axis=1)
    if test is not None:
        yt = np.asarray(test[1])
        test = (test[0], np.argmax(yt, axis=1) if yt.ndim == 2 and yt.shape[1] > 1 else yt)
    if classes is None:
        present = np.unique(y)
        if present.size < 2:
            raise SpecError(f"{str(path)!r} holds a single class ({present.tolist()}); need at least 2")
    return _split(X, y.ravel() if y.ndim == 2 and y.shape[1] == 1 else y, classes, train_per_class,
                  test_per_class, standardize, seed, f"data {path.name}", source_test=test)


# ----------------------------------------------------------------------------- synthetic
def gaussian_clusters(m: int = 3, n_features: int = 50, train_per_class: int = 30, test_per_class: int = 100,
                      overlap: float = 0.7, seed: int = 0) -> Dataset:
    """Gaussian clusters with tunable overlap s ∈ [0, 1]:

        x = √N0 (√(1 − s²) u_c + s ξ/√N0),   ξ ~ N(0, I_N0),

    with orthonormal class directions u_c, so |x|²/N0 ≈ 1 and the mean K0 between two inputs
    of the same class is 1 − s², of different classes 0. s = 0: all inputs of a class coincide
    (K0 has rank m); s = 1: the labels carry no information. No standardisation is applied.
    """
    m = _check_count("m", m, False)
    if m < 2:
        raise SpecError(f"m must be an integer >= 2 (got {m})")
    n_features = _check_count("n_features", n_features, False)
    if n_features < m:
        raise SpecError(f"n_features must be >= m = {m} (got {n_features})")
    train_per_class = _check_count("train_per_class", train_per_class, False)
    test_per_class = _check_count("test_per_class", test_per_class, False)
    s = float(overlap)
    if not 0.0 <= s <= 1.0:
        raise SpecError(f"overlap must be in [0, 1] (got {overlap!r})")
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((n_features, m)))

    def draw(n):
        lab = np.repeat(np.arange(m), n)
        return np.sqrt(n_features) * np.sqrt(1 - s * s) * U[:, lab].T + s * rng.standard_normal((lab.size, n_features)), lab

    Xtr, _ = draw(train_per_class)
    Xte, lte = draw(test_per_class)
    return Dataset(train_inputs=Xtr, class_sizes=(train_per_class,) * m, test_inputs=Xte, test_labels=lte,
                   classes=tuple(range(m)), description=f"Gaussian clusters, m = {m}, N0 = {n_features}, "
                                                        f"overlap {s:g}, {train_per_class} train per class",
                   meta={"overlap": s, "seed": seed})
