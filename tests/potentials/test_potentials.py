
import numpy as np
import pytest
import torch

from losslandscapes.transition_states import spectra
from losslandscapes.potentials.kernels import blocks, rows
from losslandscapes.data.sets import locality_masks
from losslandscapes.potentials.layout import free_mask, n_parameters
from losslandscapes.potentials.mlp import MLPLoss, Potential
from losslandscapes.landscape.symmetry import NetworkSymmetry

ARCHS = [((2, 10, 4), None), ((2, 10, 4), 2), ((2, 5, 5, 4), None), ((2, 4, 4, 4, 4), None), ((2, 5, 4), 3)]
BACKENDS = ["torch", "numba"]


def make(sizes, k, rng, n=60, lam=1e-3, reg_bias=True, backend="torch", zero_inputs=0):
    X = rng.uniform(0, 2, (n, sizes[0]))
    X[:, :zero_inputs] = 0.0  # inputs that are zero in every item, as MNIST's border pixels
    y = rng.integers(0, sizes[-1], n)
    free = free_mask(sizes, locality_masks(sizes, k)) if k else None
    return MLPLoss(sizes, X, y, lam, free, reg_bias, backend=backend)


def test_parameter_counts():
    assert [n_parameters(s) for s in ((2, 10, 4), (784, 10, 10), (2, 5, 5, 4), (2, 4, 4, 4, 4))] == [74, 7960, 69, 72]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sizes,k", ARCHS)
def test_gradient_and_hessian_match_finite_differences(rng, sizes, k, backend):
    pot = make(sizes, k, rng, backend=backend)
    x = torch.tensor(rng.normal(size=pot.P))
    f, g = pot.value_and_grad(x[None])
    h = 1e-5
    E = torch.eye(pot.P, dtype=torch.float64)
    fd_g = (pot.value(x + h * E) - pot.value(x - h * E)) / (2 * h)
    assert torch.allclose(g[0], fd_g, atol=1e-8)
    fd_h = (pot.value_and_grad(x + h * E)[1] - pot.value_and_grad(x - h * E)[1]) / (2 * h)
    assert torch.allclose(pot.hessian(x), 0.5 * (fd_h + fd_h.T), atol=1e-6)
    v = torch.tensor(rng.normal(size=pot.P))
    assert torch.allclose(pot.hvp(x, v), pot.hessian(x) @ v, atol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sizes,k,reg_bias", [((2, 10, 4), None, True), ((2, 10, 4), 1, False), ((3, 5, 4), 2, True),
                                                ((12, 4, 3), None, True), ((320, 3, 3), None, True)])
def test_closed_form_hessian_equals_automatic_differentiation(rng, sizes, k, reg_bias, backend):
    """Both products of the first x second layer block and both of the first-layer block (inputs
    fewer and more than hidden units) and, with 320 inputs, first-layer products in two row panels
    (``hessian.PANEL_ROWS``)."""
    pot = make(sizes, k, rng, reg_bias=reg_bias, backend=backend)
    x = torch.tensor(rng.normal(size=pot.P))
    assert torch.allclose(pot.hessian(x), Potential.hessian(pot, x), rtol=0, atol=1e-12)


def test_minimum_spectrum_by_factorisation_equals_diagonalisation(rng, monkeypatch):
    """Above EXACT_LIMIT: Cholesky + the largest eigenvalue of the inverse where positive definite
    (the lowest eigenvalue), an LDLᵀ inertia where not (the exact negative count, no Lanczos);
    both against a full diagonalisation. With inputs that are zero in every item, their weights
    (decoupled, curvature 2 lam) stay out of the factorisation."""
    lanczos = spectra.lowest_eigenpairs
    calls = []
    monkeypatch.setattr(spectra, "lowest_eigenpairs", lambda *a, **k: calls.append(1) or lanczos(*a, **k))
    for lam, positive, zeros in ((5.0, True, 0), (2.0, True, 12), (1e-3, False, 12)):
        calls.clear()
        pot = make((60, 20, 4), None, rng, n=80, lam=lam, backend="numba", zero_inputs=zeros)
        assert pot.P > spectra.EXACT_LIMIT
        x = torch.tensor(rng.normal(scale=0.05 if positive else 1.0, size=pot.P))
        evals = np.linalg.eigvalsh(pot.hessian(x).numpy())
        assert (evals[0] > 0) == positive
        lowest, n_neg = spectra.minimum_spectrum(pot, x)
        assert n_neg == (evals < 0).sum() and not calls
        if positive:
            assert lowest == pytest.approx(evals[0], rel=1e-6)
            assert spectra.minimum_spectrum(pot, x) == (lowest, n_neg)  # again, in the reused buffer
        else:
            assert n_neg > 0 and np.isnan(lowest)


def test_negative_count_is_the_inertia():
    """Sylvester's inertia from LDLᵀ against hand-built spectra: 0 to 40 negative eigenvalues
    (1 x 1 and 2 x 2 pivots), some within 1e-6 of zero."""
    rng = np.random.default_rng(4)
    n = 120
    for k in (0, 1, 2, 7, 40):
        d = rng.uniform(1e-6, 3.0, n) * np.where(np.arange(n) < k, -1.0, 1.0)
        Qr = np.linalg.qr(rng.standard_normal((n, n)))[0]
        A = np.asfortranarray((Qr * d) @ Qr.T)
        assert spectra.negative_count(A) == k


def test_largest_eigenvalue_of_a_hand_built_spectrum():
    """Block Krylov against a known spectrum (a random rotation of a diagonal): well separated,
    clustered at the top (relative gap 1e-4), and a space smaller than one block."""
    rng = np.random.default_rng(3)
    for top in ([10.0, 5.0], [10.0, 9.999], [2.0]):
        n = 300 if len(top) > 1 else 3
        d = np.concatenate([top, rng.uniform(0.001, 1.0, n - len(top))])
        Qr = np.linalg.qr(rng.standard_normal((n, n)))[0]
        A = (Qr * d) @ Qr.T
        assert spectra.largest_eigenvalue(lambda V: A @ V, n) == pytest.approx(top[0], rel=1e-10)


@pytest.mark.parametrize("k", [None, 2])
def test_coupled_hessian_is_the_full_hessian_without_decoupled_weights(rng, k):
    """The compacted Hessian equals the automatic-differentiation one over the kept parameters
    (upper triangle), and the parameters it leaves out (weights from inputs that are zero in every
    item) have Hessian rows that hold their diagonal 2 lam (reg) only."""
    pot = make((9, 4, 3), k, rng, n=30, lam=0.01, reg_bias=False, backend="numba", zero_inputs=3)
    kernel = pot.kernel
    x = rng.normal(size=pot.P)
    H = Potential.hessian(pot, torch.tensor(x)).numpy()
    Hc, keep = kernel.coupled_hessian(x)
    out = kernel.decoupled
    assert (len(out) == 3 * 4) if k is None else (0 < len(out) < 3 * 4)  # locality freezes some of them
    assert not np.isin(out, keep).any() and len(out) + len(keep) == pot.P
    np.testing.assert_allclose(np.triu(Hc), np.triu(H[np.ix_(keep, keep)]), rtol=0, atol=1e-12)
    off = H[out].copy()
    off[np.arange(len(out)), out] = 0.0
    assert np.abs(off).max() < 1e-14
    np.testing.assert_allclose(H[out, out], kernel.decoupled_curvature, rtol=1e-12)
    assert np.all(kernel.decoupled_curvature == 0.02)  # weights are regularised


def test_minimum_spectrum_on_the_potentials_device(rng):
    """Without a compiled kernel (torch, as on CUDA): the spectrum of the closed-form Hessian on
    the potential's device, against a NumPy diagonalisation of the automatic-differentiation one."""
    for lam, positive in ((5.0, True), (1e-3, False)):
        pot = make((60, 20, 4), None, rng, n=80, lam=lam, backend="torch", zero_inputs=5)
        assert pot.kernel is None and pot.P > spectra.EXACT_LIMIT
        x = torch.tensor(rng.normal(scale=0.05 if positive else 1.0, size=pot.P))
        reference = np.linalg.eigvalsh(Potential.hessian(pot, x).numpy())  # automatic differentiation
        lowest, n_neg = spectra.minimum_spectrum(pot, x)
        assert lowest == pytest.approx(reference[0], rel=1e-9, abs=1e-12)
        assert n_neg == int((reference < 0).sum()) and (n_neg == 0) == positive


def test_loss_definition_by_hand(rng):
    pot = make((2, 3, 2), None, rng, n=5, lam=0.01)
    x = rng.normal(size=pot.P)
    W1, b1, W2, b2 = x[:6].reshape(3, 2), x[6:9], x[9:15].reshape(2, 3), x[15:17]
    X, y = pot.X.numpy(), pot.y.numpy()
    z = np.tanh(X @ W1.T + b1) @ W2.T + b2
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    expected = -np.log(p[np.arange(5), y]).mean() + 0.01 * (x**2).sum()
    assert abs(float(pot.value(torch.tensor(x)[None])[0]) - expected) < 1e-13
    nob = make((2, 3, 2), None, rng, n=5, lam=0.01, reg_bias=False)
    nob.X, nob.y = pot.X, pot.y
    reg = 0.01 * ((x[:6] ** 2).sum() + (x[9:15] ** 2).sum())
    assert abs(float(nob.value(torch.tensor(x)[None])[0]) - (expected - 0.01 * (x**2).sum() + reg)) < 1e-13


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sizes,k", ARCHS)
def test_batch_equals_one_at_a_time(rng, sizes, k, backend):
    pot = make(sizes, k, rng, n=300, backend=backend)  # 300 samples: several blocks of the CPU kernel
    x = torch.tensor(rng.normal(size=(5, pot.P)))
    f, g = pot.value_and_grad(x)
    for i in range(5):
        fi, gi = pot.value_and_grad(x[i : i + 1])
        assert torch.allclose(fi[0], f[i], rtol=0, atol=1e-14) and torch.allclose(gi[0], g[i], rtol=0, atol=1e-14)
        if backend == "numba":  # the compiled L-BFGS evaluates one row at a time: same bits
            g_row = np.empty(pot.P)
            f_row = rows.row_value_grad(x[i].numpy(), g_row, *pot.kernel.args)
            assert f_row == float(f[i]) and np.array_equal(g_row, g[i].numpy())


@pytest.mark.parametrize("sizes,k", ARCHS)
def test_cpu_kernel_equals_torch(rng, sizes, k):
    """The compiled CPU kernel and the torch reference agree to 1e-12: loss, gradient, Hessian
    and Hessian-vector products, on 300 samples (three blocks of the kernel)."""
    ref = make(sizes, k, rng, n=300)
    cpu = MLPLoss(sizes, ref.X.numpy(), ref.y.numpy(), ref.lam, ref.free, backend="numba")
    x = torch.tensor(rng.normal(size=(4, ref.P)))
    for a, b in zip(cpu.value_and_grad(x), ref.value_and_grad(x)):
        assert torch.allclose(a, b, rtol=0, atol=1e-12)
    assert torch.allclose(cpu.hessian(x[0]), ref.hessian(x[0]), rtol=0, atol=1e-12)
    v = torch.tensor(rng.normal(size=ref.P))
    assert torch.allclose(cpu.hvp(x[1], v), ref.hvp(x[1], v), rtol=0, atol=1e-12)


def test_compact_inputs_kernel_equals_torch(rng):
    """Inputs that are mostly zero (as MNIST pixels, some zero in every sample) take the kernel's
    compact first layer: its used inputs, block by block (three blocks, the last one partial)."""
    X = rng.uniform(0, 255, (300, 30)) * (rng.uniform(size=(300, 30)) < 0.2)
    X[:, [3, 17]] = 0.0
    y = rng.integers(0, 3, 300)
    ref = MLPLoss((30, 5, 3), X, y, 0.1, backend="torch")
    cpu = MLPLoss((30, 5, 3), X, y, 0.1, backend="numba")
    assert cpu.kernel.args[2].tolist() == [i for i in range(30) if i not in (3, 17)]  # the compact path
    x = torch.tensor(rng.normal(size=(3, ref.P)) * 0.01)
    for a, b in zip(cpu.value_and_grad(x), ref.value_and_grad(x)):
        assert torch.allclose(a, b, rtol=0, atol=1e-12)


def test_compiled_exp_is_within_one_ulp_of_libm():
    z = np.concatenate([np.linspace(-708, 709, 200_001), np.random.default_rng(0).uniform(-1, 1, 100_000)])
    out = z.copy()
    blocks._vexp(out, len(out), np.empty(len(z)), np.empty(len(z), np.int64))
    assert np.max(np.abs(out - np.exp(z)) / np.spacing(np.exp(z))) <= 1.0


def test_backend_choice():
    X, y = np.zeros((3, 2)), np.zeros(3, int)
    assert MLPLoss((2, 3, 2), X, y, 0.1).backend == "numba"  # auto on the CPU
    assert MLPLoss((2, 3, 2), X, y, 0.1, backend="torch").kernel is None
    with pytest.raises(ValueError, match="backend"):
        MLPLoss((2, 3, 2), X, y, 0.1, backend="jax")


def permuted_sign_flipped(sym, a, rng):
    """A random symmetry image of ``a``: hidden nodes permuted within groups of identical frozen
    patterns and sign-flipped, each layer's incoming rows and the next layer's columns with them."""
    w = sym.layout.to_full(a)
    layers = [[W.copy(), b.copy()] for W, b in sym.layout.layers(w)]
    for layer in range(len(sym.sizes) - 2):
        groups = sym._groups(layer)
        perm = np.arange(sym.sizes[layer + 1])
        for gid in np.unique(groups):
            idx = np.flatnonzero(groups == gid)
            perm[idx] = rng.permutation(idx)
        sign = rng.choice([-1.0, 1.0], sym.sizes[layer + 1])
        W, b = layers[layer]
        layers[layer] = [W[perm] * sign[:, None], b[perm] * sign]
        layers[layer + 1][0] = layers[layer + 1][0][:, perm] * sign[None, :]
    return sym.layout.to_free(np.concatenate([np.concatenate([W.ravel(), b]) for W, b in layers]))


@pytest.mark.parametrize("sizes,k", ARCHS)
def test_permuted_sign_flipped_copy(rng, sizes, k):
    """A symmetry image has the same loss, and alignment undoes it, one at a time or side by side."""
    pot = make(sizes, k, rng)
    sym = NetworkSymmetry(sizes, pot.free)
    a = rng.normal(size=pot.P)
    B = np.stack([permuted_sign_flipped(sym, a, rng) for _ in range(3)])
    f = pot.value(torch.tensor(np.vstack([a, B])))
    assert float((f - f[0]).abs().max()) < 1e-12
    aligned, d = sym.align(a, B[0])
    assert d < 1e-10 and np.linalg.norm(a - B[0]) > 0.1
    many, dm = sym.align_many(a, B)
    assert (dm < 1e-10).all() and np.array_equal(many[0], aligned) and dm[0] == d


def test_aligning_side_by_side_equals_one_at_a_time(rng):
    """``align_many`` gives ``align``'s bits row by row, on unrelated points (a non-trivial
    assignment in every layer)."""
    pot = make((3, 6, 5, 4), None, rng)
    sym = NetworkSymmetry((3, 6, 5, 4))
    a, B = rng.normal(size=pot.P), rng.normal(size=(8, pot.P))
    many, d = sym.align_many(a, B)
    for j in range(8):
        one, dj = sym.align(a, B[j])
        assert np.array_equal(one, many[j]) and dj == d[j] and dj < np.linalg.norm(a - B[j])


def test_probabilities_sum_to_one_and_give_the_cross_entropy(rng):
    pot = make((2, 10, 4), None, rng)
    x = torch.tensor(rng.normal(size=(3, pot.P)))
    logp = pot.log_proba(x, pot.X)
    assert torch.allclose(logp.exp().sum(2), torch.ones(3, 60, dtype=torch.float64))
    picked = logp.gather(2, pot.y.expand(3, -1)[:, :, None])[:, :, 0]
    assert torch.allclose(-picked.mean(1), pot.cross_entropy(x), rtol=0, atol=1e-13)


def test_full_layout_round_trip(rng):
    pot = make((2, 10, 4), 1, rng)
    x = rng.normal(size=pot.P)
    w = pot.to_full(x)
    assert w.shape == (74,) and (w[~pot.free] == 0).all() and np.array_equal(pot.to_free(w), x)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(rng):
    X, y = rng.uniform(0, 2, (500, 784)), rng.integers(0, 10, 500)
    cpu = MLPLoss((784, 10, 10), X, y, 0.1, device="cpu")
    gpu = MLPLoss((784, 10, 10), X, y, 0.1, device="cuda")
    x = torch.tensor(rng.normal(size=(4, cpu.P)) * 0.1)
    f1, g1 = cpu.value_and_grad(x)
    f2, g2 = gpu.value_and_grad(x.cuda())
    assert torch.allclose(f1, f2.cpu(), atol=1e-12) and torch.allclose(g1, g2.cpu(), atol=1e-12)
