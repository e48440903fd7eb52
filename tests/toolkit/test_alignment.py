"""Patch-word alignment metrics and the matrix entropy."""
import math

import pytest
import torch

from shared.toolkit import alignment as al


def test_entropy_of_k_equal_orthonormal_directions_is_log_k():
    Z = torch.eye(8)[:4].repeat(3, 1)                       # 12 rows, 4 orthonormal directions, equal weight
    h, erank = al.matrix_entropy(Z)
    assert h * math.log(8) == pytest.approx(math.log(4))
    assert erank == pytest.approx(4)


def test_entropy_of_rank_one_is_zero_and_invariant_to_scaling_and_rotation():
    assert al.matrix_entropy(torch.ones(10, 5) * torch.arange(1, 11)[:, None])[0] == pytest.approx(0, abs=1e-9)
    Z = torch.randn(50, 6, generator=torch.Generator().manual_seed(0))
    Q, _ = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(1)))
    h = al.matrix_entropy(Z)[0]
    assert al.matrix_entropy(Z * torch.rand(50, 1) * 5 + 0)[0] == pytest.approx(h)
    assert al.matrix_entropy(Z @ Q)[0] == pytest.approx(h)
    assert al.matrix_entropy(Z, center=True)[0] != pytest.approx(h)


def test_entropy_of_nan_is_nan():
    Z = torch.randn(5, 3)
    Z[0, 0] = math.nan
    assert math.isnan(al.matrix_entropy(Z)[0])


def test_span_fraction_inside_and_orthogonal():
    words = torch.eye(5)[:2]
    assert float(al.span_fraction(torch.tensor([3.0, -2, 0, 0, 0]), words)) == pytest.approx(1)
    assert float(al.span_fraction(torch.tensor([0.0, 0, 1, 2, 0]), words)) == pytest.approx(0)


def test_own_other_retrieval_and_loss():
    E = torch.eye(4)
    P = E[[0, 1, 2, 3]].reshape(1, 4, 4)                   # patch k equals word k
    own = torch.arange(4).reshape(1, 4, 1)
    cos_own, cos_other = al.own_other_cos(P, E, own, torch.arange(4))
    assert (cos_own, cos_other) == (pytest.approx(1), pytest.approx(0.25))
    assert al.retrieval_top1(P, E, torch.arange(4), torch.arange(4)[None]) == 1
    assert al.retrieval_top1(P, E, torch.arange(4), torch.tensor([[1, 0, 3, 2]])) == 0
    assert float(al.patch_aligned_loss(P, 3 * P)) == pytest.approx(0, abs=1e-6)
    assert float(al.patch_aligned_loss(P, -P)) == pytest.approx(2)
    mask = torch.tensor([[1, 0, 0, 0]])
    assert float(al.patch_aligned_loss(P, torch.roll(P, 1, 1), mask)) == pytest.approx(1)


def test_grounding_skips_a_word_named_twice():
    E = torch.eye(3)
    P = torch.stack([E[0], E[1], E[2]])[None]               # patch k -> object k
    objects = torch.tensor([[0, 1, 1]])                      # word 1 names objects 1 and 2: skipped
    assert al.grounding_accuracy(P, E, objects, torch.tensor([0, 1, 2])) == 1.0
    assert al.grounding_accuracy(P, E, torch.tensor([[2, 1, 0]]), torch.tensor([0, 1, 2])) == pytest.approx(1 / 3)
    assert math.isnan(al.grounding_accuracy(P, E, torch.tensor([[1, 1, 1]]), torch.tensor([0, 1, 2])))
