"""Sample coverage and Chao1, the claims' rules on the published tables, funnels, and basin-hopping
that stops on coverage."""

import math

import numpy as np
import pytest
import torch

from losslandscapes import basinhopping
from losslandscapes.claims import CLAIMS, Evidence, evaluate, paper_rows
from losslandscapes.config import Search
from losslandscapes.coverage import class_coverage
from losslandscapes.database import Database
from losslandscapes.potentials import MLPLoss
from losslandscapes.symmetry import NetworkSymmetry
from losslandscapes.tables import reference_values


def test_coverage_and_chao1_by_hand():
    c = class_coverage(np.array([1, 1, 2, 3, 3, 3, 4, -1]))  # -1: a failed quench, not counted
    assert (c.n, c.classes, c.f1, c.f2) == (7, 4, 2, 1)
    assert c.coverage == pytest.approx(1 - 2 / 7)
    assert c.chao1 == pytest.approx(4 + 2 * 1 / (2 * 2))
    assert 4 <= c.chao1_low < c.chao1 < c.chao1_high
    s = class_coverage(["a", "b", "c", "d", "e"])  # all singletons: coverage 0, Chao1 = 5 + 5*4/2
    assert (s.coverage, s.chao1) == (0.0, 15.0)
    full = class_coverage([7] * 10)  # one class seen ten times: complete
    assert (full.coverage, full.chao1, full.chao1_low, full.chao1_high) == (1.0, 1.0, 1.0, 1.0)
    assert math.isnan(class_coverage(np.array([-1, -1])).coverage)


def test_chao1_interval_narrows_as_the_sample_grows():
    rng = np.random.default_rng(0)
    p = 1 / np.arange(1, 60) ** 1.2
    widths = []
    for n in (100, 1000, 10000):
        c = class_coverage(rng.choice(len(p), n, p=p / p.sum()))
        widths.append(c.chao1_high - c.chao1_low)
        assert c.chao1_low >= c.classes
    assert widths[0] > widths[1] > widths[2]


def test_claim_rules_read_the_published_tables_as_the_paper_does():
    """Each verdict on the paper's own numbers checked by hand against reference-values.yaml."""
    verdicts = dict(zip([c.text for c in CLAIMS], [v for v, _ in evaluate(Evidence(paper_rows(reference_values())))]))
    expected = {
        "Minima and transition-state counts rise": "holds",  # D1 122 < 266, 394, 490; D2 6 < 13, 26, 20 (TS alike)
        "A larger configuration space": "holds",  # D1 122, 266, 394, 490 > D2 6, 13, 26, 20
        "The global minimum's training loss rises": "holds",  # 0.850 < 1.000 < 1.291; 0.519 < 0.791 < 1.285
        "At 10 % error": "does not hold",  # D1: testing 0.720 < training 0.727
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


def test_claims_compare_counts_at_an_equal_number_of_quenches():
    ev = Evidence({}, {"D1-h10-k1": np.array([1, 1, 1, 1, 2, 2]), "D1-e0": np.array([1, 2, 3, 3])})
    counts, how = ev.counts(["D1-h10-k1", "D1-e0"])
    assert counts == [1, 3] and "first 4 quenches" in how


def test_basin_hopping_records_every_quench_and_stops_on_coverage(tmp_path):
    rng = np.random.default_rng(7)
    X = rng.uniform(0, 3, (60, 2))
    y = (X[:, 0] + X[:, 1] > 3).astype(int) + 2 * (X[:, 0] > 1.5)
    pot = MLPLoss((2, 2, 4), X, y, 1e-2)
    runs = {}
    for target, floor in ((None, 8), (0.5, 8), (0.5, 10**6)):
        search = Search(chains=4, steps=12, quench_gtol=1e-5, tight_gtol=1e-9, coverage=target, min_quenches=floor)
        db = Database(tmp_path / f"{target}-{floor}.sqlite", {"t": target}, NetworkSymmetry((2, 2, 4)), 1e-6, 0.1)
        stats = basinhopping.run(pot, db, search, seed=3, device=torch.device("cpu"))
        q = db.quenches_frame()
        runs[target, floor] = (q, stats["coverage"])
        assert list(q.columns) == ["chain", "step", "minimum", "accepted"]
        assert q["minimum"].max() <= len(db.minima.ids)
        assert stats["coverage"]["n"] == int((q["minimum"] > 0).sum())
        assert class_coverage(db.quench_classes()).as_dict() == stats["coverage"]
        db.close()
    full, early = runs[None, 8][0], runs[0.5, 8][0]
    assert len(full) >= 4 * 13 and (full.groupby("chain")["step"].max() == 12).all()
    assert runs[0.5, 8][1]["coverage"] >= 0.5 and len(early) < len(full)
    assert runs[0.5, 10**6][0].equals(full)  # below the floor of quenches the target never stops it
    assert full.iloc[: len(early)].equals(early)  # the same seed gives the same quenches until the stop
