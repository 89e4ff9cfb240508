"""Data sets (digits, npz, idx, Gaussian clusters), GP baseline on data, error definitions."""
import gzip

import numpy as np
import pytest

from theory.datasets import gaussian_clusters, load_array_dataset, load_digits_dataset, read_idx
from theory.general import class_errors, gaussian_phi_mean, gp_generalization, input_kernels
from theory.general import test_conditional as conditional_h_star
from theory.gp import feature_kernel, pair_kernel
from solvers.data.linear import solve_linear
from theory.spec import SpecError


def test_digits_subset_blocks_and_standardisation():
    pytest.importorskip("sklearn")
    ds = load_digits_dataset((3, 5, 7), train_per_class=10, test_per_class=20, seed=1)
    assert ds.class_sizes == (10, 10, 10) and ds.classes == (3, 5, 7)
    assert ds.test_inputs.shape == (60, 64) and np.bincount(ds.test_labels).tolist() == [20, 20, 20]
    X = ds.train_inputs
    assert np.allclose(X.mean(axis=0), 0, atol=1e-12)
    sd = X.std(axis=0)
    assert np.all((np.abs(sd - 1) < 1e-12) | (sd < 1e-12))
    spec = ds.spec("relu", 1.0, 1.0, 0.1)
    assert spec.P == 30 and spec.inputs.shape == (30, 64)
    rest = load_digits_dataset((0, 1), train_per_class=5)  # test = all remaining images
    assert rest.n_test > 300
    with pytest.raises(SpecError, match="at least 2"):
        load_digits_dataset((0,), train_per_class=5)
    with pytest.raises(SpecError, match="fewer than"):
        load_digits_dataset((0, 1), train_per_class=500)


def test_npz_and_idx(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3, 3))
    y = np.repeat([4, 9], 20)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ds = load_array_dataset(tmp_path / "d.npz", train_per_class=8, standardize="global")
    assert ds.classes == (4, 9) and ds.train_inputs.shape == (16, 9) and ds.n_test == 24
    np.savez(tmp_path / "m.npz", x_train=x, y_train=y, x_test=x[::4], y_test=y[::4])
    ds2 = load_array_dataset(tmp_path / "m.npz", train_per_class=5, standardize="none")
    assert np.bincount(ds2.test_labels).tolist() == [5, 5]
    np.savez(tmp_path / "m1.npz", x_train=x, y_train=y, x_test=x[:10], y_test=y[:10])
    with pytest.raises(SpecError, match="no test examples"):
        load_array_dataset(tmp_path / "m1.npz", train_per_class=5)
    # idx: write the MNIST header by hand (gzip)
    imgs = rng.integers(0, 255, (30, 4, 4)).astype(np.uint8)
    labs = np.repeat([0, 1, 2], 10).astype(np.uint8)
    head_i = bytes([0, 0, 8, 3]) + b"".join(int(n).to_bytes(4, "big") for n in imgs.shape)
    head_l = bytes([0, 0, 8, 1]) + (30).to_bytes(4, "big")
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(head_i + imgs.tobytes()))
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(head_l + labs.tobytes()))
    assert np.array_equal(read_idx(tmp_path / "train-images-idx3-ubyte.gz"), imgs)
    ds3 = load_array_dataset(tmp_path / "train-images-idx3-ubyte.gz", classes="0,2", train_per_class=4)
    assert ds3.classes == (0, 2) and ds3.train_inputs.shape == (8, 16)
    (tmp_path / "bad").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05ab")
    with pytest.raises(SpecError, match="header"):
        read_idx(tmp_path / "bad")
    with pytest.raises(SpecError, match="does not exist"):
        load_array_dataset(tmp_path / "missing.npz")
    np.savez(tmp_path / "mis.npz", x=x, y=y[:30])
    with pytest.raises(SpecError, match="one entry per input"):
        load_array_dataset(tmp_path / "mis.npz", train_per_class=5)
    np.savez(tmp_path / "one.npz", x=x, y=np.zeros(40))
    with pytest.raises(SpecError, match="single class"):
        load_array_dataset(tmp_path / "one.npz", train_per_class=5)


def test_gaussian_cluster_overlap():
    ds = gaussian_clusters(m=3, n_features=400, train_per_class=20, test_per_class=5, overlap=0.6, seed=2)
    K0 = ds.train_inputs @ ds.train_inputs.T / 400
    lab = ds.train_labels
    same = K0[(lab[:, None] == lab[None]) & ~np.eye(60, dtype=bool)].mean()
    diff = K0[lab[:, None] != lab[None]].mean()
    assert same == pytest.approx(1 - 0.36, abs=0.03) and diff == pytest.approx(0, abs=0.03)
    with pytest.raises(SpecError, match="overlap"):
        gaussian_clusters(overlap=1.5)


@pytest.mark.parametrize("name", ["relu", "erf", "normcdf", "tanh"])
def test_gaussian_phi_mean_and_pair_kernel_vs_monte_carlo(name):
    rng = np.random.default_rng(4)
    z = rng.standard_normal(400_000)
    mu, v = 0.3, 0.7
    val, err = gaussian_phi_mean(name, mu, v)
    from theory.nonlinearities import get_nonlinearity
    s = get_nonlinearity(name)(mu + np.sqrt(v) * z)
    assert abs(val - s.mean()) < 5 * s.std() / np.sqrt(z.size) + err
    C = np.array([[1.2, 0.5], [0.5, 0.8]])
    Kf, _ = feature_kernel(name, C)
    Kp, _ = pair_kernel(name, C[0, 0], C[1, 1], C[0, 1])
    assert Kp == pytest.approx(Kf[0, 1], abs=1e-12)


def test_test_conditional_singular_kernel():
    """P > N0: h* | h from the pseudo-inverse reproduces the exact linear predictor h* = w·x*/√N0."""
    rng = np.random.default_rng(1)
    X, Xs = rng.standard_normal((10, 4)), rng.standard_normal((3, 4))
    K0, ks, kss = input_kernels(X, Xs)
    A, v = conditional_h_star(K0, ks, kss, 1.3)
    assert np.allclose(v, 0, atol=1e-10)  # x* in the span of the training inputs
    w = rng.standard_normal(4)
    assert np.allclose(A @ (X @ w / 2), Xs @ w / 2)


def test_errors_definition():
    F = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    e = class_errors(F, np.array([0, 0, 1]), 2, variance=np.array([0.1, 0.3, 0.0]))
    assert e["mean_predictor_error"] == pytest.approx([0.25, 0.0])
    assert e["bayes_error"] == pytest.approx([0.45, 0.0])


def test_linear_mean_field_predictor_equals_gp_at_small_T():
    """THEORY §2: for linear φ at T → 0 the mean-field mean predictor is the GP one, k0ᵀK0⁻¹Y."""
    ds = gaussian_clusters(m=3, n_features=30, train_per_class=6, test_per_class=4, overlap=0.8, seed=5)
    for T in (1e-3, 1e-5):
        spec = ds.spec("linear", 1.0, 1.0, T)
        mf = solve_linear(spec).predict(ds.test_inputs)
        gp = gp_generalization(ds.train_inputs, spec.targets(), ds.test_inputs, ds.test_labels, "linear", 1.0, 1.0, T)
        assert np.max(np.abs(mf - gp.mean_predictor)) < 50 * T
    # at finite T they differ (the learned kernel changes the predictor): the test can fail
    spec = ds.spec("linear", 1.0, 1.0, 1.0)
    gp = gp_generalization(ds.train_inputs, spec.targets(), ds.test_inputs, ds.test_labels, "linear", 1.0, 1.0, 1.0)
    assert np.max(np.abs(solve_linear(spec).predict(ds.test_inputs) - gp.mean_predictor)) > 1e-2
    # GP Bayes error exceeds its mean-predictor error by the posterior variance
    assert np.all(np.array(gp.errors["bayes_error"]) > np.array(gp.errors["mean_predictor_error"]))


def test_linear_closed_form_on_digits_at_moderate_temperature():
    """Regression: the closed form used to leave the domain on digits 0/1/2, 30 per class, T = 0.5.
    The saddle point f = σ_1² K0 t U = Y − T t holds to 1e-10 and the solution is inside the domain."""
    pytest.importorskip("sklearn")
    ds = load_digits_dataset((0, 1, 2), train_per_class=30)
    for T in (0.5, 0.05):
        sol = solve_linear(ds.spec("linear", 1.0, 1.0, T))
        assert sol.residual < 1e-10
        M = np.eye(3) - sol.t.T @ sol.spec.input_kernel() @ sol.t  # σ_a = σ_1 = 1
        assert np.linalg.eigvalsh(M).min() > 0
        np.testing.assert_allclose(sol.readout_moment, np.linalg.inv(M), rtol=1e-9)
