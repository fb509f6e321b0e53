import numpy as np
import torch
from scipy.optimize import minimize_scalar

from losslandscapes.data import ljat3
from losslandscapes.optimize.lbfgs import LBFGSSettings, minimise


def energy(x):
    return ljat3.energy_gradient(torch.tensor(np.atleast_2d(x), dtype=torch.float64))[0].numpy()


def test_gradient_matches_finite_differences(rng):
    x = torch.tensor(rng.uniform(0, 2.5, (20, 9)))
    _, g = ljat3.energy_gradient(x)
    h = 1e-6
    fd = np.stack([(energy(x.numpy() + h * np.eye(9)[i]) - energy(x.numpy() - h * np.eye(9)[i])) / (2 * h) for i in range(9)], 1)
    assert np.allclose(g.numpy(), fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max())


def test_triangle_and_linear_minima_independently():
    """1-D minimisations of the symmetric geometries reproduce methods.md's values to 1e-12."""
    tri = minimize_scalar(lambda r: energy(ljat3.triangle(r))[0], bounds=(1.0, 1.4), method="bounded", options={"xatol": 1e-13})
    lin = minimize_scalar(lambda r: energy(ljat3.chain(r))[0], bounds=(1.0, 1.3), method="bounded", options={"xatol": 1e-13})
    assert abs(tri.fun - ljat3.TRIANGLE_E) < 1e-12 and abs(lin.fun - ljat3.LINEAR_E) < 1e-12
    assert abs(tri.x - ljat3.TRIANGLE_R) < 1e-6 and abs(lin.x - ljat3.LINEAR_R) < 1e-6
    for geom in (ljat3.triangle(ljat3.TRIANGLE_R), ljat3.chain(ljat3.LINEAR_R, 2)):
        _, g = ljat3.energy_gradient(torch.tensor([geom], dtype=torch.float64))
        assert g.abs().max() < 1e-10


def test_classify_chain_centres_and_triangle():
    geoms = np.array([ljat3.triangle(ljat3.TRIANGLE_R)] + [ljat3.chain(ljat3.LINEAR_R, k) for k in (1, 2, 3)])
    assert ljat3.classify(geoms, energy(geoms)).tolist() == [0, 1, 2, 3]
    off = geoms[:1] * 1.01  # not a stationary point
    assert ljat3.classify(off, energy(off)).tolist() == [-1]


def test_nearly_coincident_atoms_converge_without_nan():
    x = np.array([[0, 0, 0, 0.008, 0, 0, 1.0, 0.5, 0.2]])
    assert energy(x)[0] > 1e20
    res = minimise(lambda z: ljat3.energy_gradient(z), torch.tensor(x), LBFGSSettings())
    assert res.converged.all() and np.isfinite(res.f.numpy()).all()
    assert ljat3.classify(res.x.numpy(), res.f.numpy())[0] >= 0


def test_generator_d2_fraction_and_columns():
    s = ljat3.GeneratorSettings(L=1.385, n_starts=4000, seed=3)
    cols, summary = ljat3.generate(s)
    assert summary["n_unconverged"] == 0 and summary["n_unclassified"] == 0
    # independent GMIN-style runs: class-0 fraction about 0.742 for D2 (methods.md §2)
    assert abs(summary["class_fractions"][0] - 0.742) < 0.03
    assert (cols["split"][:2000] == "train").all() and (cols["split"][2000:] == "test").all()
    assert set(np.unique(cols["label"])) == {0, 1, 2, 3}


def test_gradient_flow_labelling_runs():
    s = ljat3.GeneratorSettings(L=1.385, n_starts=40, seed=3, labelling="gradient_flow")
    cols, summary = ljat3.generate(s)
    assert summary["n_unconverged"] == 0
    assert (cols["label"] >= 0).mean() > 0.99
