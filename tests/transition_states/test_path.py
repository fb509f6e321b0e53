"""The steepest-descent path by local quadratic steps, against closed forms and LSODA."""

import numpy as np
import pytest
import torch
from scipy.integrate import quad, solve_ivp

from fixtures import MullerBrown
from losslandscapes.transition_states.ef import eigenvector_following
from losslandscapes.transition_states.path import follow, model_step


def exact_path(c, b, t):
    """Displacement along the steepest-descent path of 0.5 sum b z^2 + c.z from z = 0 at time t."""
    return c * np.expm1(-b * t) / b


@pytest.mark.parametrize("step", [0.01, 0.1, 1.0])
def test_model_step_lies_on_the_quadratic_path_at_the_asked_arc_length(step):
    rng = np.random.default_rng(3)
    b = np.concatenate([[-2e-3], np.geomspace(1e-5, 30.0, 20)])  # one uphill mode, stiff and flat ones
    c = rng.normal(size=b.size) * 1e-3
    h = model_step(c, b, step)
    i = 10  # the time from one coordinate, then every other coordinate must follow
    t = -np.log1p(b[i] * h[i] / c[i]) / b[i]
    np.testing.assert_allclose(h, exact_path(c, b, t), rtol=1e-9, atol=1e-15)
    arc = quad(lambda u: np.linalg.norm(c * np.exp(-b * u)), 0, t, limit=500, points=[1 / b[-1], 1 / b[-5]])[0]
    assert arc == pytest.approx(step, rel=2e-3)


def test_model_step_stops_at_the_model_minimum_when_that_is_nearer():
    b = np.array([1.0, 2.0, 5.0])
    c = np.array([1e-3, -2e-3, 5e-3])  # Newton step of length about 1.7e-3
    np.testing.assert_allclose(model_step(c, b, 0.1), -c / b, rtol=1e-12)


def muller_brown_saddles(pot):
    out = []
    for guess in ((-0.82, 0.62), (0.21, 0.29)):
        r = eigenvector_following(pot, torch.tensor(guess, dtype=torch.float64), 1, 1e-10, 100, 0.05, 0.1)
        assert r.converged and r.n_neg == 1
        out.append(r)
    return out


@pytest.mark.parametrize("convex_step", [None, 0.2])
def test_follow_ends_where_an_accurate_integration_of_the_path_ends(convex_step):
    """Both push-offs of both Müller-Brown saddles: the Newton point at the path's end lies next to
    the end of an LSODA integration of dx/dt = -g (relative tolerance 1e-10), and the walked arc
    length is that of the integrated path; with longer steps where the Hessian is positive definite
    too, in fewer Hessians."""
    pot = MullerBrown()
    hessians = []

    def grad(t, x):
        return pot.value_and_grad(torch.as_tensor(x)[None])[1][0].numpy()

    for r in muller_brown_saddles(pot):
        for sign in (1, -1):
            x0 = (r.x + sign * 0.01 * r.vector).numpy()
            end = follow(pot, torch.as_tensor(x0), 0.1, 0.05, 1000, convex_step)
            assert end.reached
            if convex_step:
                hessians.append((end.steps, follow(pot, torch.as_tensor(x0), 0.1, 0.05, 1000).steps))
            done = lambda t, x: np.linalg.norm(grad(t, x)) - 1e-8  # noqa: E731
            done.terminal = True
            sol = solve_ivp(lambda t, x: -grad(t, x), (0, 1e6), x0, method="LSODA", rtol=1e-10, atol=1e-12,
                            events=done, dense_output=True)
            assert np.linalg.norm(end.x.numpy() - sol.y[:, -1]) < 0.05
            arc = np.sum(np.linalg.norm(np.diff(sol.sol(np.linspace(0, sol.t[-1], 20001)), axis=1), axis=0))
            assert end.length == pytest.approx(arc, abs=0.06)
    if convex_step:
        steps, plain = np.array(hessians).T
        assert (steps <= plain).all() and steps.sum() < plain.sum()
