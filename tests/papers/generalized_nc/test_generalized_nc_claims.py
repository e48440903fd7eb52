"""generalized_nc: a sabotage test for each checked claim (a matching broken input must FAIL; NaN must FAIL)."""
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from shared.claims import ClaimBook
from shared.papers.generalized_nc import experiments as ex
from shared.papers.generalized_nc.verdict import record_claims
from shared.toolkit import gnc


def ufm_rows(ratios: dict, gnc1=1e-7, gnc3=1e-6, rho=0.617) -> pd.DataFrame:
    return pd.DataFrame([{"inv_tau": t, "seed": s, "gnc1": gnc1, "gnc2": r * rho, "gnc3": gnc3, "ratio": r}
                         for t, per_seed in ratios.items() for s, r in enumerate(per_seed)])


def net_rows(values: dict) -> pd.DataFrame:
    return pd.DataFrame([{"inv_tau": t, "seed": 0, **v} for t, v in values.items()])


def good() -> dict:
    """Results shaped like a cpu run, with values like the measured ones (every claim PASSes)."""
    mnist = {1: {"gnc1": 1e-3, "gnc2": 0.45, "gnc3": 3e-5, "ratio": 0.77, "train_acc": 1.0, "test_acc": 0.93, "ncc_test": 0.93},
             5: {"gnc1": 2e-3, "gnc2": 0.565, "gnc3": 8e-5, "ratio": 0.97, "train_acc": 1.0, "test_acc": 0.945, "ncc_test": 0.94}}
    net = {1: {"gnc2": 0.2, "ratio": 0.3, "test_acc": 0.45, "ncc_test": 0.4},
           5: {"gnc2": 0.3, "ratio": 0.5, "test_acc": 0.62, "ncc_test": 0.6}}
    return {"closed": ex.closed_forms(),
            "codes": pd.DataFrame({"K": [10, 10, 20, 100], "d": [2, 3, 3, 10],
                                   "rho": [1 - math.cos(math.radians(36)), 0.5827, 0.3195, 0.6171]}),
            "ufm": ufm_rows({1: [0.75], 7: [0.95]}), "ufm_K": 100, "ufm_d": 10, "ufm_steps": 4000,
            "heat": pd.DataFrame({"K": [20, 20], "d": [3, 3], "inv_tau": [1, 5], "ratio": [0.5, 0.9]}),
            "mnist": net_rows(mnist), "net": net_rows(net), "net_name": "two-digit MNIST"}


def verdict(results: dict, claim: str, scale: str = "cpu") -> str:
    book = record_claims(ClaimBook("generalized_nc", scale=scale), results, SimpleNamespace(scale=scale))
    return next(c.verdict for c in book.claims if c.name == claim)


def test_the_good_results_pass_every_check():
    book = record_claims(ClaimBook("generalized_nc", scale="cpu"), good(), SimpleNamespace(scale="cpu"))
    checks = [c for c in book.claims if c.verdict != "INFO"]
    assert checks and all(c.verdict == "PASS" for c in checks), [(c.name, c.verdict) for c in checks]


def with_(results, **changes):
    return {**results, **changes}


def test_sabotage_gnc2_exact():
    closed = ex.closed_forms()
    # a broken distance: the distance to the nearest other point instead of to the hull
    broken = closed.assign(measured=[np.min(np.linalg.norm(gnc.circle_code(10)[0] - gnc.circle_code(10)[1:], axis=1))] * len(closed))
    assert verdict(with_(good(), closed=broken.assign(error=(broken.measured - broken.exact).abs())), "gnc2_exact") == "FAIL"
    assert verdict(with_(good(), closed=closed.assign(error=[math.nan] + list(closed.error[1:]))), "gnc2_exact") == "FAIL"


def codes_with(K, d, rho):
    codes = good()["codes"]
    return codes.assign(rho=np.where((codes.K == K) & (codes.d == d), rho, codes.rho))


def test_sabotage_code_circle():
    random_code = gnc.gnc2(np.random.default_rng(0).standard_normal((10, 2)))  # an unsolved (random) code
    assert verdict(with_(good(), codes=codes_with(10, 2, random_code)), "code_circle") == "FAIL"
    assert verdict(with_(good(), codes=codes_with(10, 2, math.nan)), "code_circle") == "FAIL"


def test_sabotage_code_10_3():
    rho, _ = gnc.softmax_code(10, 3, iters=1, restarts=1)  # one step: no optimization
    assert verdict(with_(good(), codes=codes_with(10, 3, rho)), "code_10_3") == "FAIL"
    assert verdict(with_(good(), codes=codes_with(10, 3, math.nan)), "code_10_3") == "FAIL"


def test_sabotage_code_100_10():
    rho = gnc.gnc2(np.random.default_rng(0).standard_normal((100, 10)))
    assert verdict(with_(good(), codes=codes_with(100, 10, rho)), "code_100_10") == "FAIL"
    assert verdict(with_(good(), codes=codes_with(100, 10, math.nan)), "code_100_10") == "FAIL"


def untrained_ufm_rows():
    """A spherical UFM stopped after one step at every temperature: no code."""
    rows = []
    for t in (1, 7):
        final = gnc.spherical_ufm(100, 10, 2, t, 1, seed=0, eval_points=0).history.iloc[-1]
        rows.append({"inv_tau": t, "seed": 0, **final.to_dict()})
    out = pd.DataFrame(rows)
    return out.assign(ratio=out.gnc2 / 0.6171)


def untrained_ufm_fails(claim):
    assert verdict(with_(good(), ufm=untrained_ufm_rows()), claim) == "FAIL"
    nan = good()["ufm"].assign(ratio=math.nan, gnc1=math.nan, gnc3=math.nan)
    assert verdict(with_(good(), ufm=nan), claim) == "FAIL"


def test_sabotage_ufm_code_reached():
    untrained_ufm_fails("ufm_code_reached")


def test_sabotage_ufm_tau_gap():
    untrained_ufm_fails("ufm_tau_gap")


def test_sabotage_ufm_gnc1():
    untrained_ufm_fails("ufm_gnc1")


def test_sabotage_ufm_gnc3():
    untrained_ufm_fails("ufm_gnc3")


def test_sabotage_ufm_tau1_short():
    # swapped temperatures: the tau = 1 run is given the tau = 1/7 result, so tau = 1 "reaches" the code
    swapped = ufm_rows({1: [0.95], 7: [0.95]})
    assert verdict(with_(good(), ufm=swapped), "ufm_tau1_short") == "FAIL"
    assert verdict(with_(good(), ufm=swapped), "ufm_tau_gap") == "FAIL"
    assert verdict(with_(good(), ufm=good()["ufm"].assign(ratio=math.nan)), "ufm_tau1_short") == "FAIL"


def test_ufm_worst_seed_decides():
    assert verdict(with_(good(), ufm=ufm_rows({1: [0.75, 0.75], 7: [0.95, 0.85]})), "ufm_code_reached") == "FAIL"


def mnist_with(**changes):
    mnist = good()["mnist"].copy()
    for (t, col), value in changes.items():
        mnist.loc[mnist.inv_tau == t, col] = value
    return mnist


def swapped_mnist_fails(claim):
    mnist = good()["mnist"]
    swapped = mnist.assign(inv_tau=mnist.inv_tau.map({1: 5, 5: 1}))  # the temperatures' results swapped
    assert verdict(with_(good(), mnist=swapped), claim) == "FAIL"
    assert verdict(with_(good(), mnist=mnist.assign(ratio=math.nan, gnc2=math.nan)), claim) == "FAIL"


def test_sabotage_mnist_code_reached():
    swapped_mnist_fails("mnist_code_reached")


def test_sabotage_mnist_tau_spreads():
    swapped_mnist_fails("mnist_tau_spreads")


@pytest.fixture(scope="module")
def untrained_mnist():
    """The metrics of an untrained MLP + cosine classifier on (a slice of) MNIST."""
    import torch
    from shared.papers.generalized_nc import data
    train, test = data.mnist_tensors()
    train, test = (train[0][:1000], train[1][:1000]), (test[0][:200], test[1][:200])
    torch.manual_seed(0)
    model = ex.build_net("mlp", 784, 3, 10, 5, width=32)
    row = ex.evaluate(model, train, test, 10, 1000, torch.device("cpu"))
    return pd.DataFrame([{"inv_tau": t, "seed": 0, **row, "ratio": row["gnc2"] / 0.5827} for t in (1, 5)])


def untrained_mnist_fails(claim, untrained):
    assert verdict(with_(good(), mnist=untrained), claim) == "FAIL"
    nan = good()["mnist"].assign(train_acc=math.nan, gnc1=math.nan, gnc3=math.nan)
    assert verdict(with_(good(), mnist=nan), claim) == "FAIL"


def test_sabotage_mnist_train_acc(untrained_mnist):
    untrained_mnist_fails("mnist_train_acc", untrained_mnist)


def test_sabotage_mnist_gnc1(untrained_mnist):
    untrained_mnist_fails("mnist_gnc1", untrained_mnist)


def test_sabotage_mnist_gnc3(untrained_mnist):
    untrained_mnist_fails("mnist_gnc3", untrained_mnist)


def test_sabotage_net_tau_generalizes():
    net = good()["net"]
    swapped = net.assign(inv_tau=net.inv_tau.map({1: 5, 5: 1}))
    assert verdict(with_(good(), net=swapped), "net_tau_generalizes") == "FAIL"
    assert verdict(with_(good(), net=net.assign(test_acc=math.nan)), "net_tau_generalizes") == "FAIL"


def test_smoke_marks_the_budget_claims_na():
    results = with_(good(), ufm_K=20, ufm_d=3)
    book = record_claims(ClaimBook("generalized_nc", scale="smoke"), results, SimpleNamespace(scale="smoke"))
    by = {c.name: c.verdict for c in book.claims}
    for claim in ("mnist_code_reached", "mnist_train_acc", "net_tau_generalizes", "ufm_gnc1", "code_100_10"):
        assert by[claim] == "N/A", claim
