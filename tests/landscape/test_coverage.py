"""Sample coverage and Chao1, the claims' rules on the published tables, funnels, and basin-hopping
that stops on coverage."""

import math

import numpy as np
import pytest
import torch

from losslandscapes.landscape import basinhopping
from losslandscapes.analysis.claims import CLAIMS, Evidence, evaluate, mean_interval, paper_rows, variance_ratio_interval, wilson_interval
from losslandscapes.landscape.coverage import (chain_coverage, class_coverage, classes_at, coverage_at,
                                              sample_for_coverage)
from losslandscapes.storage.database import Database
from losslandscapes.potentials.mlp import MLPLoss
from losslandscapes.landscape.symmetry import NetworkSymmetry
from losslandscapes.analysis.tables import reference_values

import settings  # tests/settings.py: config.yaml's search and connect


def test_coverage_and_chao1_by_hand():
    c = class_coverage(np.array([1, 1, 2, 3, 3, 3, 4, -1]))  # -1: a failed quench, not counted
    assert (c.n, c.classes, c.f1, c.f2) == (7, 4, 2, 1)
    assert c.coverage == pytest.approx(1 - 2 / 7)
    assert c.chao == pytest.approx(4 + 2 * 1 / (2 * 2))
    assert 4 <= c.chao_low < c.chao < c.chao_high
    s = class_coverage(["a", "b", "c", "d", "e"])  # all singletons: coverage 0, Chao1 = 5 + 5*4/2
    assert (s.coverage, s.chao) == (0.0, 15.0)
    full = class_coverage([7] * 10)  # one class seen ten times: complete
    assert (full.coverage, full.chao, full.chao_low, full.chao_high) == (1.0, 1.0, 1.0, 1.0)
    assert math.isnan(class_coverage(np.array([-1, -1])).coverage)


def test_chain_coverage_by_hand_counts_each_class_once_per_chain():
    labels, chains = [1, 1, 2, 1, 3, 1, 2, -1], [0, 0, 0, 1, 1, 2, 2, 2]
    c = chain_coverage(labels, chains)  # class 1 in 3 chains, 2 in 2, 3 in 1: U = 6, Q1 = Q2 = 1, T = 3
    assert (c.n, c.units, c.classes, c.f1, c.f2) == (7, 3, 3, 1, 1)
    assert c.coverage == pytest.approx(1 - 1 / 6 * (2 * 1 / (2 * 1 + 2 * 1)))
    assert c.chao == pytest.approx(3 + 2 / 3 * 1 * 0 / (2 * 2))
    again = chain_coverage(labels + [1] * 20 + [2] * 5, chains + [0] * 25)  # a chain returning changes nothing
    assert again.as_dict() == {**c.as_dict(), "n": 32}
    assert math.isnan(chain_coverage([1, 1, 2], [0, 0, 0]).coverage)  # one chain: undefined


def test_chain_coverage_matches_the_truth_for_sticky_chains_where_good_turing_does_not():
    """Chains that stay in their class with probability 0.5 per step (as basin-hopping returns do)
    and otherwise jump to class i with probability p_i: the truth, the probability p of the classes
    found, is matched by the incidence estimate and overstated by the one-outcome estimate."""
    rng = np.random.default_rng(5)
    p = 1 / np.arange(1, 301) ** 0.8
    p /= p.sum()

    def chain(steps=12):
        out = [rng.choice(len(p), p=p)]
        for _ in range(steps):
            out.append(out[-1] if rng.uniform() < 0.5 else rng.choice(len(p), p=p))
        return out

    errors, good_turing = [], []
    for _ in range(40):
        runs = [chain() for _ in range(8)]
        labels, units = np.concatenate(runs), np.repeat(np.arange(8), [len(r) for r in runs])
        truth = p[np.unique(labels)].sum()  # about 0.4
        errors.append(chain_coverage(labels, units).coverage - truth)
        good_turing.append(class_coverage(labels).coverage - truth)
    assert abs(np.mean(errors)) < 0.04 and np.mean(good_turing) > 0.3


def test_chao1_interval_narrows_as_the_sample_grows():
    rng = np.random.default_rng(0)
    p = 1 / np.arange(1, 60) ** 1.2
    widths = []
    for n in (100, 1000, 10000):
        c = class_coverage(rng.choice(len(p), n, p=p / p.sum()))
        widths.append(c.chao_high - c.chao_low)
        assert c.chao_low >= c.classes
    assert widths[0] > widths[1] > widths[2]


def test_extrapolation_by_hand():
    counts = np.array([1, 1, 2, 4])  # n 8, f1 2, f2 1: f0 = 7/8 * 4/2 = 1.75, A = 14 / 16
    assert coverage_at(counts, 8) == pytest.approx(1 - 2 / 8 * 14 / 16)
    assert coverage_at(counts, 10) == pytest.approx(1 - 2 / 8 * (14 / 16) ** 3)
    assert classes_at(counts, 8) == pytest.approx(4)
    assert classes_at(counts, 10) == pytest.approx(4 + 1.75 * (1 - (14 / 16) ** 2))
    assert classes_at(counts, 10 ** 6) == pytest.approx(4 + 1.75)  # Chao1
    # one outcome drawn from the 8: each class is found with probability x/8
    assert classes_at(counts, 1) == pytest.approx(1.0)
    # a sample of one: the next outcome is of its class with probability sum x (x - 1) / (8 * 7)
    assert coverage_at(counts, 1) == pytest.approx((2 * 1 + 4 * 3) / 56)
    k = sample_for_coverage(counts, 0.9, 10 ** 6)
    assert coverage_at(counts, k) >= 0.9 > coverage_at(counts, k - 1)
    assert sample_for_coverage(counts, 0.9, 12) == 12  # capped
    assert sample_for_coverage(np.array([3, 5]), 0.9, 100) == 8  # no singleton: complete already


def test_extrapolation_matches_the_truth_of_a_known_distribution():
    """Draw 150 outcomes from 400 classes of known probabilities; the estimates of the classes
    and the coverage of samples of 150 / 2 to 2 x 150, averaged over 300 samples, lie within a few
    per cent of their exact expectations sum (1 - (1 - p)^k) and sum p (1 - (1 - p)^k)."""
    p = np.random.default_rng(0).lognormal(0, 1.5, 400)
    p /= p.sum()
    rng = np.random.default_rng(1)
    n = 150
    for k in (75, 150, 300):
        est_s, est_c = [], []
        for _ in range(300):
            counts = np.bincount(rng.choice(len(p), n, p=p))
            counts = counts[counts > 0]
            est_s.append(classes_at(counts, k))
            est_c.append(coverage_at(counts, k))
        true_s = (1 - (1 - p) ** k).sum()
        true_c = (p * (1 - (1 - p) ** k)).sum()
        assert np.mean(est_s) == pytest.approx(true_s, rel=0.04), k
        assert np.mean(est_c) == pytest.approx(true_c, rel=0.04), k


def test_claim_rules_read_the_published_tables_as_the_paper_does():
    """Each verdict on the paper's own numbers checked by hand against reference-values.yaml."""
    verdicts = dict(zip([c.text for c in CLAIMS], [v for v, _ in evaluate(Evidence(paper_rows(reference_values())))]))
    expected = {
        "Minima and transition-state counts rise": "holds",  # D1 122 < 266, 394, 490; D2 6 < 13, 26, 20 (TS alike)
        "A larger configuration space": "holds",  # D1 122, 266, 394, 490 > D2 6, 13, 26, 20
        "The global minimum's training loss rises": "holds",  # 0.850 < 1.000 < 1.291; 0.519 < 0.791 < 1.285
        "At 10 % error": "contradicted",  # D1: testing 0.720 < training 0.727
        "At 50 % error": "holds",  # 0.706 > 0.639; 0.741 > 0.604
        "At 100 % error": "holds",  # 0.336, 0.242, 0.2333
        "The spread (sd)": "holds",  # 0.0025 < 0.013; 0.00031 < 0.0043; 0.010 < 0.072
        "Locality k = 1": "not testable",  # no published counts
        "Deeper networks": "holds",  # 193036 > 65591; 13298 > 3630
        "Fewer data": "holds",  # 65591 > 3630; 193036 > 13298
        "The D1 and D2 landscapes are single-funnelled": "not testable",
    }
    for start, verdict in expected.items():
        (text,) = [t for t in verdicts if t.startswith(start)]
        assert verdicts[text] == verdict, text


def test_interval_rules_against_hand_values():
    iv = mean_interval([1.0, 2.0, 3.0])  # mean 2, sd 1, t(0.975, 2) = 4.3027
    assert (iv.low, iv.high) == pytest.approx((2 - 4.3027 / 3**0.5, 2 + 4.3027 / 3**0.5), abs=1e-4)
    w = wilson_interval(0.5, 10, point=False)  # the textbook 5 of 10: [0.2366, 0.7634]
    assert (w.low, w.high) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    f = variance_ratio_interval(2.0, 11, 1.0, 11, point=False)  # ratio 4, F(0.975; 10, 10) = 3.7168
    assert (f.low, f.high) == pytest.approx((4 / 3.7168, 4 * 3.7168), rel=1e-4)
    assert (iv.above(-1.0), iv.above(2.0), iv.below(-3.0)) == ("holds", "undecided", "contradicted")
    # one minimum, or none spread, on a side: nothing to decide (was a division by zero)
    assert variance_ratio_interval(0.1, 1, 0.0, 1, point=False).above(1.0) == "undecided"
    assert variance_ratio_interval(0.0, 3, 0.0, 3, point=False).above(1.0) == "undecided"


def _rows(chao1: dict) -> dict:
    return {e: {"chao_low": lo, "chao_high": hi} for e, (lo, hi) in chao1.items()}


def test_count_claims_are_decided_only_by_separate_intervals():
    (fewer_data,) = [c for c in CLAIMS if c.text.startswith("Fewer data")]
    apart = {"D1-2HL-N100": (300, 400), "D1-2HL-N1000": (100, 200), "D1-3HL-N100": (500, 900),
             "D1-3HL-N1000": (120, 480)}
    assert fewer_data.rule(Evidence(_rows(apart), {}))[0] == "holds"
    overlap = {**apart, "D1-3HL-N1000": (120, 520)}
    assert fewer_data.rule(Evidence(_rows(overlap), {}))[0] == "undecided"
    reversed_ = {**apart, "D1-2HL-N1000": (401, 700)}
    assert fewer_data.rule(Evidence(_rows(reversed_), {}))[0] == "contradicted"


def test_value_claims_need_independent_draws():
    (at50,) = [c for c in CLAIMS if c.text.startswith("At 50 % error")]

    def draws(diffs):
        return [{"train_gmin_auc": 0.6, "test_gmin_auc": 0.6 + d} for d in diffs]

    clear = {"D1-e50": draws([0.03, 0.05, 0.04, 0.06]), "D2-e50": draws([0.1, 0.12, 0.11])}
    assert at50.rule(Evidence({}, clear))[0] == "holds"
    assert at50.rule(Evidence({}, {**clear, "D1-e50": draws([0.05])}))[0] == "undecided"  # one draw
    assert at50.rule(Evidence({}, {**clear, "D1-e50": draws([0.05, -0.04, 0.02])}))[0] == "undecided"  # within noise
    assert at50.rule(Evidence({}, {**clear, "D2-e50": draws([-0.1, -0.12, -0.11])}))[0] == "contradicted"


def test_basin_hopping_records_every_quench_and_stops_on_coverage(tmp_path):
    rng = np.random.default_rng(7)
    X = rng.uniform(0, 3, (60, 2))
    y = (X[:, 0] + X[:, 1] > 3).astype(int) + 2 * (X[:, 0] > 1.5)
    pot = MLPLoss((2, 2, 4), X, y, 1e-2)
    runs = {}
    for target, floor in ((None, 8), (0.5, 8), (0.5, 10**6)):
        search = settings.search(chains=4, steps=12, quench_gtol=1e-5, tight_gtol=1e-9, coverage=target, min_quenches=floor)
        db = Database(tmp_path / f"{target}-{floor}.sqlite", {"t": target}, NetworkSymmetry((2, 2, 4)), 1e-6, 0.1)
        stats = basinhopping.run(pot, db, search, seed=3, device=torch.device("cpu"))
        q = db.quenches_frame()
        runs[target, floor] = (q, stats["coverage"])
        assert list(q.columns) == ["chain", "step", "minimum", "accepted"]
        assert q["minimum"].max() <= len(db.minima.ids)
        assert stats["coverage"]["n"] == int((q["minimum"] > 0).sum())
        assert db.quench_coverage().as_dict() == stats["coverage"]
        db.close()
    full, early = runs[None, 8][0], runs[0.5, 8][0]
    assert len(full) >= 4 * 13 and (full.groupby("chain")["step"].max() == 12).all()
    assert runs[0.5, 8][1]["coverage"] >= 0.5 and len(early) < len(full)
    assert runs[0.5, 10**6][0].equals(full)  # below the floor of quenches the target never stops it
    assert full.iloc[: len(early)].equals(early)  # the same seed gives the same quenches until the stop


def test_auto_temperature_starts_at_the_median_uphill_move_over_ln2_and_steps_stay_bounded(tmp_path):
    rng = np.random.default_rng(7)
    X = rng.uniform(0, 3, (100, 2))
    y = ((X[:, 0] * X[:, 1]) % 1.3 > 0.6).astype(int) + 2 * (np.sin(3 * X[:, 0]) > 0)
    pot = MLPLoss((2, 8, 4), X, y, 1e-4)
    search = settings.search(chains=8, steps=12, coverage=None, temperature="auto", min_step_size=0.5, max_step_size=1.2)
    db = Database(tmp_path / "auto.sqlite", {"t": "auto"}, NetworkSymmetry((2, 8, 4)), 1e-6, 0.1)
    stats = basinhopping.run(pot, db, search, seed=3, device=torch.device("cpu"))
    rises = db.get("uphill_moves")
    assert len(rises) >= basinhopping.CALIBRATION_MOVES and min(rises) > 0
    T0 = db.get("calibrated_temperature")
    assert T0 == pytest.approx(np.median(rises) / math.log(2), rel=1e-12)
    # then x ADAPT^(1/2) per rejected and x ADAPT^(-1/2) per accepted move to another minimum
    k = 2 * math.log(stats["temperature"] / T0) / math.log(basinhopping.ADAPT)
    assert stats["temperature"] == db.get("temperature") and k == pytest.approx(round(k), abs=1e-9) and k != 0
    assert all(0.5 <= ch[1] <= 1.2 for ch in db.load_chains().values())  # step sizes within their bounds
    db.close()


def test_adapt_settles_where_hits_come_at_the_target_rate():
    """A controlled process whose hit probability 1/(1 + x) falls as x grows (as returns fall when
    steps grow, and rejections when the temperature rises): from far away on either side the
    controller drives the hit rate to the target."""
    rng = np.random.default_rng(1)
    for target in (0.2, 0.5):
        for x in (1e-3, 1e3):
            hits = []
            for i in range(4000):
                hit = rng.uniform() < 1 / (1 + x)
                x = basinhopping.adapt(x, hit, target)
                hits.append(hit)
            assert np.mean(hits[2000:]) == pytest.approx(target, abs=0.03)
