"""Unit tests of shared.papers.residual_convergence: closed-form spectra, attention at beta = 0,
the rate fit, gradients, divergence handling and the embedding inputs."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from shared.errors import MissingInputError, ParameterError
from shared.papers.residual_convergence.experiments import grid, init_anatomy, run_sweep
from shared.papers.residual_convergence.inputs import generator, make_problem
from shared.papers.residual_convergence.model import ResidualTransformer, squared_loss, stacked
from shared.papers.residual_convergence.rate import loglinear_rate
from shared.papers.residual_convergence.spectra import stable_rank, svd_stats
from shared.papers.residual_convergence.summary import claim_values, paired_runs, rate_correlation
from shared.papers.residual_convergence.training import DIVERGED, FINISHED, train_gd

D64 = torch.float64


def tiny_model(alpha: float = 1.0, beta: float = 1.0, layers: int = 1, d: int = 6, seed: int = 0):
    return ResidualTransformer(d, 5, 2, alpha=alpha, beta=beta, layers=layers,
                               generator=torch.Generator().manual_seed(seed))


def gaussian_problem(n: int = 3, N: int = 4, d: int = 16, d_y: int = 2, seed: int = 0):
    return make_problem(n, N, d, d_y)(seed)


# --- spectra ----------------------------------------------------------------------------

def test_svd_stats_of_a_diagonal_matrix_are_exact():
    stats = svd_stats(torch.diag(torch.tensor([0.5, 3.0, 2.0], dtype=D64)))
    assert stats.sigma_min == pytest.approx(0.5)
    assert stats.sigma_max == pytest.approx(3.0)
    assert stats.kappa == pytest.approx(6.0)


def test_svd_stats_of_a_tall_matrix_use_its_last_singular_value():
    A = torch.zeros(5, 2, dtype=D64)
    A[0, 0], A[1, 1] = 4.0, 0.25
    assert svd_stats(A) == pytest.approx((0.25, 4.0, 16.0))


@pytest.mark.parametrize("A", [
    torch.diag(torch.tensor([3.0, 2.0, 0.0], dtype=D64)),
    torch.ones(4, 6, dtype=D64),
])
def test_rank_deficient_matrix_has_infinite_kappa(A):
    assert svd_stats(A).kappa == math.inf


def test_stable_rank_of_identity_and_rank_one():
    N = 5
    S = torch.stack([torch.eye(N, dtype=D64), torch.full((N, N), 1 / N, dtype=D64)])
    assert stable_rank(S[:1]) == pytest.approx(N)
    assert stable_rank(S[1:]) == pytest.approx(1.0)
    assert stable_rank(S) == pytest.approx((N + 1) / 2)


# --- attention at beta = 0 ----------------------------------------------------------------

def test_beta_zero_gives_uniform_attention_of_stable_rank_one():
    X, _ = gaussian_problem()
    S = tiny_model(beta=0.0, d=16)(X).S
    N = X.shape[1]
    torch.testing.assert_close(S, torch.full_like(S, 1 / N))
    assert stable_rank(S) == pytest.approx(1.0, abs=1e-12)


def test_beta_zero_without_residual_has_rank_at_most_n():
    X, _ = gaussian_problem(n=3, N=4, d=16)
    Z = stacked(tiny_model(alpha=0.0, beta=0.0, d=16)(X).Z)
    assert torch.linalg.matrix_rank(Z).item() <= 3
    assert svd_stats(Z).kappa == math.inf


def test_beta_zero_with_residual_has_full_row_rank_when_nN_le_d():
    X, _ = gaussian_problem(n=3, N=4, d=16)
    Z = stacked(tiny_model(alpha=1.0, beta=0.0, d=16)(X).Z)
    assert torch.linalg.matrix_rank(Z).item() == 12
    assert math.isfinite(svd_stats(Z).kappa)


# --- rate fit -------------------------------------------------------------------------------

@pytest.mark.parametrize("q", [0.5, 0.99, 0.9999])
def test_rate_fit_of_a_geometric_sequence(q):
    losses = 7.0 * q ** np.arange(400)
    fit = loglinear_rate(losses)
    assert fit.rho == pytest.approx(-math.log(q), rel=1e-9)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)


def test_rate_fit_skips_the_transient():
    losses = np.concatenate([np.full(100, 50.0), 3.0 * 0.9 ** np.arange(300)])
    assert loglinear_rate(losses).r2 == pytest.approx(1.0)


def test_rate_fit_of_a_constant_or_short_sequence():
    assert loglinear_rate(np.ones(100)).rho == 0.0
    assert math.isnan(loglinear_rate(np.array([1.0, 0.5])).rho)


# --- model, gradients and GD ------------------------------------------------------------

@pytest.mark.parametrize("alpha,layers", [(1.0, 1), (0.0, 1), (1.0, 2)])
def test_gradcheck_on_a_tiny_float64_model(alpha, layers):
    model = tiny_model(alpha=alpha, beta=2.0, layers=layers)
    X, Y = make_problem(2, 3, 6, 2)(0)
    names = [name for name, _ in model.named_parameters()]

    def loss(*params):
        out = torch.func.functional_call(model, dict(zip(names, params)), (X,))
        return squared_loss(out.F, Y)

    params = tuple(p.detach().clone().requires_grad_() for p in model.parameters())
    assert torch.autograd.gradcheck(loss, params)


def test_weights_depend_on_the_seed_and_not_on_alpha_or_beta():
    a = ResidualTransformer(8, 4, 2, alpha=0.0, beta=1.0, generator=generator(3, 1))
    b = ResidualTransformer(8, 4, 2, alpha=1.0, beta=100.0, generator=generator(3, 1))
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q)
    X, _ = make_problem(2, 2, 8, 2)(3)
    assert not torch.allclose(X[0, 0], a.w_q[0][0])


def test_gd_with_residual_decreases_the_loss_and_logs_the_spectrum():
    X, Y = gaussian_problem(n=4, N=4, d=32)
    model = ResidualTransformer(32, 64, 2, generator=generator(0, 1))
    result = train_gd(model, X, Y, eta=0.05, steps=60, svd_every=25)
    assert result.status == FINISHED and result.diverged_at is None
    assert len(result.losses) == 61
    assert result.spectrum_steps == [0, 25, 50, 60]
    assert result.loss_ratio < 0.5


def test_train_qk_false_holds_query_and_key_fixed():
    X, Y = gaussian_problem()
    model = ResidualTransformer(16, 8, 2, train_qk=False, generator=generator(0, 1))
    w_q, w_v = model.w_q[0].detach().clone(), model.w_v[0].detach().clone()
    train_gd(model, X, Y, eta=0.1, steps=5)
    torch.testing.assert_close(model.w_q[0].detach(), w_q)
    assert not torch.allclose(model.w_v[0].detach(), w_v)


def test_huge_step_ends_as_diverged_not_as_an_exception():
    X, Y = gaussian_problem()
    model = ResidualTransformer(16, 8, 2, generator=generator(0, 1))
    result = train_gd(model, X, Y, eta=1e6, steps=50)
    assert result.status == DIVERGED
    assert 0 < result.diverged_at <= 50
    assert len(result.losses) == result.diverged_at
    assert result.loss_ratio == math.inf


# --- sweeps ------------------------------------------------------------------------------

def test_grid_scales_eta_by_depth():
    specs = grid([0], [1.0], [0.0, 1.0], [1, 2], eta=0.1, steps=5, eta_by_depth=True)
    assert len(specs) == 4
    assert {(s.layers, s.eta) for s in specs} == {(1, 0.1), (2, 0.05)}


def test_run_sweep_tables_and_init_anatomy():
    problem = make_problem(4, 3, 24, 2)
    sweep = run_sweep(grid([0, 1], [1.0], [0.0, 1.0], eta=0.05, steps=20), problem, m=16)
    assert len(sweep.runs) == 4
    assert set(sweep.runs.status) == {FINISHED}
    assert len(sweep.losses) == 4 * 21
    residual = sweep.runs[sweep.runs.alpha == 1.0]
    plain = sweep.runs[sweep.runs.alpha == 0.0]
    assert (residual.kappa0.to_numpy() < plain.kappa0.to_numpy()).all()
    anatomy = init_anatomy(problem, seed=0, beta=1.0, betas=[0.0, 1e4], m=16)
    assert anatomy.S.shape == (3, 3)
    assert anatomy.stable_ranks.stable_rank.iloc[0] == pytest.approx(1.0)
    assert anatomy.sv_residual.min() > anatomy.sv_attention.min()


def test_paired_runs_and_claim_values_take_the_worst_case():
    runs = pd.DataFrame({
        "seed": [0, 0, 1, 1], "beta": [1.0] * 4, "layers": [1] * 4, "alpha": [0.0, 1.0, 0.0, 1.0],
        "kappa0": [1e4, 5.0, 300.0, 6.0], "ratio": [0.9, 1e-5, 0.5, 1e-4], "r2": [0.5, 0.99, 0.6, 0.97],
        "rho": [1e-4, 0.02, 1e-4, 0.01],
    })
    pairs = paired_runs(runs)
    assert pairs.kappa_gap.tolist() == pytest.approx([2e3, 50.0])
    assert pairs.speedup.tolist() == pytest.approx([9e4, 5e3])
    values = claim_values(pairs, pd.DataFrame({"beta": [1.0, 10.0], "stable_rank": [1.01, 1.5]}))
    assert values == pytest.approx({
        "kappa_res_max": 6.0, "kappa_nores_min": 300.0, "kappa_gap_min": 50.0, "ratio_res_max": 1e-4,
        "ratio_nores_min": 0.5, "speedup_min": 5e3, "r2_res_min_beta1": 0.97, "stable_rank_beta1": 1.01,
        "rho_res_min_beta1": 0.01, "linear_fit_min_beta1": 0.97,
    })


def test_claim_values_do_not_skip_nan_and_a_diverging_fit_is_not_linear_convergence():
    """pandas' min/max skip NaN: the worst case must not (issue 10)."""
    runs = pd.DataFrame({
        "seed": [0, 0, 1, 1], "beta": [1.0] * 4, "layers": [1] * 4, "alpha": [0.0, 1.0, 0.0, 1.0],
        "kappa0": [1e4, 5.0, 300.0, math.nan], "ratio": [0.9, 1e-5, 0.5, 1e-4], "r2": [0.5, 0.99, 0.6, 0.99],
        "rho": [1e-4, 0.02, 1e-4, -0.05],
    })
    values = claim_values(paired_runs(runs), pd.DataFrame({"beta": [1.0], "stable_rank": [1.01]}))
    assert math.isnan(values["kappa_res_max"]) and math.isnan(values["kappa_gap_min"])
    assert values["r2_res_min_beta1"] == pytest.approx(0.99) and values["linear_fit_min_beta1"] == -math.inf


def test_rate_correlation_ranks_finished_runs():
    runs = pd.DataFrame({"status": ["finished"] * 3 + ["diverged"], "rho": [0.01, 0.02, 0.03, 0.0],
                         "kappa0": [30.0, 20.0, 10.0, 1.0]})
    assert rate_correlation(runs) == pytest.approx(1.0)


# --- inputs ------------------------------------------------------------------------------

def test_gaussian_inputs_have_unit_rows_and_are_seeded():
    X, Y = gaussian_problem(seed=5)
    torch.testing.assert_close(torch.linalg.vector_norm(X, dim=-1), torch.ones(X.shape[:2], dtype=D64))
    assert X.dtype == Y.dtype == D64
    torch.testing.assert_close(X, gaussian_problem(seed=5)[0])
    assert not torch.allclose(X, gaussian_problem(seed=6)[0])


def test_unknown_features_is_a_parameter_error():
    with pytest.raises(ParameterError, match="features"):
        make_problem(2, 2, 4, 1, features="images")


@pytest.mark.parametrize("missing", ["embedding_checkpoint", "text_file"])
def test_missing_embedding_inputs_name_the_parameter(tmp_path, missing):
    paths = {"embedding_checkpoint": str(tmp_path), "text_file": str(tmp_path / "text.txt")}
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "tokenizer.json").write_text("{}")
    (tmp_path / "text.txt").write_text("hello")
    paths[missing] = str(tmp_path / "absent")
    with pytest.raises(MissingInputError, match=missing):
        make_problem(2, 2, 4, 1, features="embeddings", **paths)


def test_checkpoint_without_tokenizer_is_a_missing_input(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "text.txt").write_text("hello")
    with pytest.raises(MissingInputError, match="embedding_checkpoint"):
        make_problem(2, 2, 4, 1, features="embeddings", embedding_checkpoint=str(tmp_path),
                     text_file=str(tmp_path / "text.txt"))


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A random 2-layer GPT-2 (width 32) with a word-level tokenizer, and a short text."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2Model, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny_gpt2")
    text = "the quick brown fox jumps over the lazy dog while a cat sleeps in the warm sun " * 4
    vocab = {w: i for i, w in enumerate(["[UNK]", *sorted(set(text.split()))])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]").save_pretrained(folder)
    config = GPT2Config(vocab_size=len(vocab), n_embd=32, n_layer=2, n_head=2, n_positions=64,
                        bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    GPT2Model(config).save_pretrained(folder)
    (folder / "text.txt").write_text(text)
    return folder


def test_embedding_inputs_from_a_tiny_checkpoint(tiny_checkpoint):
    from transformers import AutoModel

    problem = make_problem(3, 4, d=999, d_y=2, features="embeddings",
                           embedding_checkpoint=str(tiny_checkpoint),
                           text_file=str(tiny_checkpoint / "text.txt"))
    X, Y = problem(0)
    assert X.shape == (3, 4, 32) and Y.shape == (3, 4, 2) and X.dtype == D64
    torch.testing.assert_close(torch.linalg.vector_norm(X, dim=-1), torch.ones(3, 4, dtype=D64))
    table = AutoModel.from_pretrained(tiny_checkpoint).get_input_embeddings().weight.detach().double()
    unit = table / table.norm(dim=-1, keepdim=True)
    assert all(torch.isclose(unit, row).all(dim=-1).any() for row in X.reshape(-1, 32))
    torch.testing.assert_close(X, problem(0)[0])
    sweep = run_sweep(grid([0], [1.0], [1.0], eta=0.05, steps=5), problem, m=8)
    assert sweep.runs.status.iloc[0] == FINISHED
