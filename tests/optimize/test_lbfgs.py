from dataclasses import replace

import numpy as np
import torch

from losslandscapes.optimize.lbfgs import CONVERGED, PAST_PEAK, LBFGSPool, LBFGSSettings, minimise, minimise_potential


def rosenbrock(x):
    f = (1 - x[:, 0]) ** 2 + 100 * (x[:, 1] - x[:, 0] ** 2) ** 2
    g = torch.stack([-2 * (1 - x[:, 0]) - 400 * x[:, 0] * (x[:, 1] - x[:, 0] ** 2), 200 * (x[:, 1] - x[:, 0] ** 2)], 1)
    return f, g


def test_rosenbrock_batch_converges_to_minimum(rng):
    x0 = torch.tensor(rng.uniform(-2, 2, (16, 2)))
    res = minimise(rosenbrock, x0, LBFGSSettings(memory=5, max_step=0.5, gtol=1e-10))
    assert (res.status == CONVERGED).all()
    assert np.allclose(res.x.numpy(), 1.0, atol=1e-7)


def test_rows_do_not_depend_on_the_batch(rng):
    x0 = torch.tensor(rng.uniform(-2, 2, (6, 2)))
    s = LBFGSSettings(memory=4, max_step=0.3, gtol=1e-9)
    batch = minimise(rosenbrock, x0, s)
    for i in range(6):
        one = minimise(rosenbrock, x0[i : i + 1], s)
        assert torch.equal(one.x[0], batch.x[i]) and one.iterations[0] == batch.iterations[i]


def test_nonfinite_trials_are_rejected_and_counted():
    def fg(x):  # a quadratic bowl with a non-finite strip where the first step lands (x0 = 0.0707)
        f = ((x - 2) ** 2).sum(1)
        f = torch.where((x[:, 0] > 0.05) & (x[:, 0] < 0.08), torch.full_like(f, float("nan")), f)
        return f, 2 * (x - 2)

    res = minimise(fg, torch.zeros(1, 2, dtype=torch.float64), LBFGSSettings(max_step=1.0, gtol=1e-10))
    assert res.n_nonfinite >= 1
    assert res.converged.all() and torch.allclose(res.x, torch.tensor([[2.0, 2.0]], dtype=torch.float64))


def test_pool_accepts_rows_while_running():
    pool = LBFGSPool(rosenbrock, 2, LBFGSSettings(memory=5, max_step=0.5, gtol=1e-8))
    pool.add(torch.tensor([[-1.0, 1.0]]), ["a"])
    done = []
    for i in range(5000):
        if i == 10:
            pool.add(torch.tensor([[0.0, 0.0]]), ["b"])
        done += pool.step()
        if not len(pool):
            break
    assert sorted(d[0] for d in done) == ["a", "b"]
    assert all(d[4] == CONVERGED for d in done)


def small_loss(backend="numba", free=None):
    from losslandscapes.potentials.mlp import MLPLoss

    rng = np.random.default_rng(3)
    X = rng.uniform(0, 3, (200, 2))
    y = (X[:, 0] > X[:, 1]).astype(int) + 2 * (X[:, 0] + X[:, 1] > 3)
    return MLPLoss((2, 4, 4), X, y, 1e-3, free=free, backend=backend), rng


def test_preconditioner_is_the_input_metric_on_first_layer_weights():
    """``input_metric`` inverts the ridge-regularised, normalised second-moment matrix of the
    inputs; ``precondition`` (torch) and ``kernels.precondition_row`` multiply the first-layer
    weights by it, with frozen weights left out, and leave every other parameter alone."""
    from losslandscapes.potentials.kernels.lbfgs import precondition_row
    from losslandscapes.potentials.layout import free_mask
    from losslandscapes.potentials.mlp import input_metric

    free = free_mask((2, 4, 4), [np.array([[1, 0], [1, 1], [0, 1], [1, 1]]), np.ones((4, 4))])
    pot, rng = small_loss(free=free)
    X = pot.X.numpy()
    C = X.T @ X / len(X)
    M = input_metric(X)
    assert np.allclose((C / np.trace(C) * 2 + np.eye(2)) @ M, np.eye(2), atol=1e-14)
    assert np.all(np.linalg.eigvalsh(M) > 0)
    full = np.eye(pot.P_full)
    full[:8, :8] = np.kron(np.eye(4), M)  # W1 [4, 2] row-major: each hidden unit's two weights
    explicit = full[np.ix_(free, free)]
    V = rng.standard_normal((3, pot.P))
    assert np.allclose(pot.precondition(torch.tensor(V)).numpy(), V @ explicit.T, rtol=0, atol=1e-14)
    q = V[0].copy()
    precondition_row(q, pot.kernel.metric, pot.kernel.used, pot.layout.free_index, 2, np.empty(8))
    assert np.allclose(q, explicit @ V[0], rtol=0, atol=1e-14)
    # an input that is zero in every sample decouples: its metric row is the unit vector
    from losslandscapes.potentials.mlp import MLPLoss

    X3 = np.insert(X, 1, 0.0, axis=1)
    pot3 = MLPLoss((3, 4, 4), X3, pot.y.numpy(), 1e-3)
    M3 = input_metric(X3)
    assert np.array_equal(M3[1], [0.0, 1.0, 0.0]) and np.allclose(M3[np.ix_([0, 2], [0, 2])], M, rtol=0, atol=1e-14)
    assert pot3.kernel.used.tolist() == [0, 2]
    v = rng.standard_normal(pot3.P)
    explicit3 = np.eye(pot3.P)
    explicit3[:12, :12] = np.kron(np.eye(4), M3)
    q = v.copy()
    precondition_row(q, pot3.kernel.metric, pot3.kernel.used, pot3.layout.free_index, 3, np.empty(12))
    assert np.allclose(q, explicit3 @ v, rtol=0, atol=1e-14)
    assert np.allclose(pot3.precondition(torch.tensor(v[None])).numpy()[0], explicit3 @ v, rtol=0, atol=1e-14)


def test_polish_reaches_the_lbfgs_minimum_and_reports_its_spectrum():
    """Newton polishing from a loose quench ends where a tight L-BFGS run ends, and the spectrum
    it reports is that of an independent Hessian at the returned point."""
    from losslandscapes.landscape.quench import polish

    pot, rng = small_loss()
    x0 = torch.tensor(rng.uniform(-1, 1, (4, pot.P)))
    loose = minimise(pot.value_and_grad, x0, LBFGSSettings(memory=10, max_step=0.5, gtol=1e-5), 0)
    tight = minimise(pot.value_and_grad, loose.x, LBFGSSettings(memory=10, max_step=0.5, gtol=1e-10), 0)
    for b in range(4):
        r = polish(pot, loose.x[b], 1e-10)
        assert r.converged and r.rms <= 1e-10
        evals = torch.linalg.eigvalsh(pot.torch_hessian(r.x))
        assert r.n_neg == int((evals < 0).sum()) == 0 and abs(r.eigenvalue - float(evals[0])) < 1e-12
        # two points of one quadratic basin with gradients g1, g2 lie within (|g1| + |g2|) / lowest eigenvalue
        bound = (r.rms + float(tight.rms[b])) * pot.P**0.5 / float(evals[0])
        assert abs(r.f - float(tight.f[b])) < 1e-12 and float((r.x - tight.x[b]).norm()) < 1.01 * bound


def test_compiled_lbfgs_follows_the_torch_pool():
    """The compiled rows (``kernels.lbfgs``) take the steps of ``LBFGSPool``: after 30 iterations
    the iterates agree to rounding, and run to convergence they end at the same minimum."""
    pot, rng = small_loss()
    x0 = torch.tensor(rng.uniform(-1, 1, (4, pot.P)))
    for precondition in (None, pot.precondition):
        for s, tol in ((LBFGSSettings(memory=10, max_step=0.5, gtol=1e-12, max_iter=30), 1e-9),
                       (LBFGSSettings(memory=10, max_step=0.5, gtol=1e-10), 1e-6)):
            s = replace(s, precondition=precondition is not None)
            ref = minimise(pot.torch_value_and_grad, x0, s, 0, precondition=precondition)
            out = minimise_potential(pot, x0, s)
            assert torch.equal(out.status, ref.status)
            assert torch.allclose(out.x, ref.x, rtol=0, atol=tol) and torch.allclose(out.f, ref.f, rtol=0, atol=1e-12)
        assert (out.status == CONVERGED).all() and (out.rms <= 1e-10).all()


def double_well(x):  # f = -x^2/2 + x^4/4 + y^2: a transition state at 0 between minima at x = +-1
    f = -0.5 * x[:, 0] ** 2 + 0.25 * x[:, 0] ** 4 + x[:, 1] ** 2
    return f, torch.stack([-x[:, 0] + x[:, 0] ** 3, 2 * x[:, 1]], 1)


def test_past_peak_stops_a_descent_inside_the_basin():
    """From a push-off at x = 0.01 the gradient grows to its peak at the inflection x = 1/sqrt(3)
    and then falls: the descent stops past the inflection, before the minimum at x = 1."""
    s = LBFGSSettings(memory=4, max_step=0.01, gtol=1e-12, past_peak=0.5)
    res = minimise(double_well, torch.tensor([[0.01, 0.0], [-0.01, 0.001]], dtype=torch.float64), s, 0)
    assert (res.status == PAST_PEAK).all()
    assert ((res.x[:, 0].abs() > 3**-0.5) & (res.x[:, 0].abs() < 1 - 1e-3)).all()
    assert (res.x[:, 0] * torch.tensor([1.0, -1.0], dtype=torch.float64) > 0).all()


def test_compiled_past_peak_stops_where_the_torch_pool_stops():
    pot, rng = small_loss()
    x0 = torch.tensor(rng.uniform(-1, 1, (3, pot.P)))
    s = LBFGSSettings(memory=10, max_step=0.05, gtol=1e-12, past_peak=0.9, peak_rise=1.0)
    ref, out = minimise(pot.torch_value_and_grad, x0, s, 0), minimise_potential(pot, x0, s)
    assert (ref.status == PAST_PEAK).all() and torch.equal(out.status, ref.status)
    assert torch.equal(out.iterations, ref.iterations) and torch.allclose(out.x, ref.x, rtol=0, atol=1e-10)


def test_input_metric_has_the_same_bits_for_any_blas_thread_count():
    """The metric is computed with BLAS single-threaded, whatever OMP_NUM_THREADS says: threaded
    BLAS splits X^T X and the inverse differently (MNIST-sized inputs differed under 2 threads), so
    results would depend on the machine's cores."""
    import os
    import subprocess
    import sys

    code = ("import hashlib, numpy as np; from losslandscapes.potentials.mlp import input_metric; "
            "X = np.random.default_rng(0).uniform(0, 255, (1000, 784)); X[:, :100] = 0; "
            "print(hashlib.sha256(input_metric(X).tobytes()).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", code], env={**os.environ, "OMP_NUM_THREADS": str(n),
                              "OPENBLAS_NUM_THREADS": str(n)}, capture_output=True, text=True, check=True).stdout
               for n in (1, 2, 4)}
    assert len(digests) == 1, digests


def test_polish_reusing_a_hessian_ends_at_the_same_minimum_with_fewer_hessians():
    """Steps on a reused Hessian (``reuse``) end where a fresh Hessian every step ends, verified by
    a Hessian diagonalised at the returned point, with fewer Hessians in all."""
    from losslandscapes.transition_states.ef import eigenvector_following

    pot, rng = small_loss()
    loose = minimise(pot.value_and_grad, torch.tensor(rng.uniform(-1, 1, (4, pot.P))),
                     LBFGSSettings(memory=10, max_step=0.5, gtol=1e-3), 0)
    cycles = {0: 0, 10: 0}
    for b in range(4):
        fresh, reused = (eigenvector_following(pot, loose.x[b], 0, 1e-10, 200, 0.1, 0.5, max_rise=1e-10, reuse=k)
                         for k in cycles)
        cycles[0] += fresh.cycles
        cycles[10] += reused.cycles
        assert fresh.converged and reused.converged and reused.rms <= 1e-10
        assert float((fresh.x - reused.x).norm()) < 1e-6 and abs(fresh.f - reused.f) < 1e-12
        evals = torch.linalg.eigvalsh(pot.torch_hessian(reused.x))
        assert reused.n_neg == 0 and abs(reused.eigenvalue - float(evals[0])) < 1e-12
    assert cycles[10] < cycles[0]
