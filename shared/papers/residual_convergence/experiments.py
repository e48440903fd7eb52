"""Sweeps of GD runs over (seed, beta, alpha, layers), returned as tidy tables."""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch

from shared.parallel import parallel_map
from shared.papers.residual_convergence.inputs import Problem, generator
from shared.papers.residual_convergence.model import ResidualTransformer
from shared.papers.residual_convergence.rate import loglinear_rate
from shared.papers.residual_convergence.spectra import stable_rank
from shared.papers.residual_convergence.training import TrainResult, train_gd


@dataclass(frozen=True)
class RunSpec:
    seed: int
    beta: float
    alpha: float
    layers: int
    eta: float
    steps: int


@dataclass
class Sweep:
    """One row per run (``runs``), loss curves (``losses``) and spectra of Z (``spectra``)."""

    runs: pd.DataFrame
    losses: pd.DataFrame
    spectra: pd.DataFrame


def grid(seeds, betas, alphas, layers=(1,), *, eta: float, steps: int,
         eta_by_depth: bool = False) -> list[RunSpec]:
    """Every (seed, beta, alpha, L); with ``eta_by_depth`` the step of an L-layer run is eta / L."""
    return [RunSpec(int(s), float(b), float(a), int(L), eta / L if eta_by_depth else eta, int(steps))
            for s, b, a, L in itertools.product(seeds, betas, alphas, layers)]


def build_model(spec: RunSpec, d: int, m: int, d_y: int, train_qk: bool) -> ResidualTransformer:
    """The model of ``spec``; its weights depend on the seed only (not on alpha or beta)."""
    return ResidualTransformer(d, m, d_y, alpha=spec.alpha, beta=spec.beta, layers=spec.layers,
                               train_qk=train_qk, generator=generator(spec.seed, 1))


def summarize(spec: RunSpec, result: TrainResult, stable_rank0: float) -> dict:
    """The row of one run: its spec, status, loss ratio, rate fit and spectrum of Z at t=0 and T."""
    fit = loglinear_rate(result.loss_array())
    return {
        **asdict(spec), "status": result.status, "diverged_at": result.diverged_at,
        "loss0": result.losses[0], "lossT": result.losses[-1], "ratio": result.loss_ratio,
        "rho": fit.rho, "r2": fit.r2, "sigma_min0": result.sigma_min[0],
        "sigma_max0": result.sigma_max[0], "kappa0": result.kappa[0],
        "kappaT": result.kappa[-1], "stable_rank0": stable_rank0,
    }


def train_one(spec: RunSpec, problem: Problem, m: int, train_qk: bool, svd_every: int,
              device: torch.device | str) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """One GD run of ``spec`` on ``problem(seed)``: its row, loss curve and spectra (tables of run_sweep)."""
    X, Y = (t.to(device) for t in problem(spec.seed))
    model = build_model(spec, X.shape[-1], m, Y.shape[-1], train_qk).to(device)
    with torch.no_grad():
        stable_rank0 = stable_rank(model(X).S)
    result = train_gd(model, X, Y, eta=spec.eta, steps=spec.steps, svd_every=svd_every)
    key = asdict(spec)
    return (summarize(spec, result, stable_rank0),
            pd.DataFrame({**key, "step": np.arange(len(result.losses)), "loss": result.losses}),
            pd.DataFrame({**key, "step": result.spectrum_steps, "sigma_min": result.sigma_min,
                          "sigma_max": result.sigma_max, "kappa": result.kappa}))


def run_sweep(specs: list[RunSpec], problem: Problem, m: int, *, train_qk: bool = True,
              svd_every: int = 10, device: torch.device | str = "cpu",
              desc: str = "GD runs", n_jobs: int = 1) -> Sweep:
    """Train one model per spec on ``problem(seed)`` and collect the tables (``n_jobs`` processes)."""
    done = parallel_map(train_one, [(spec, problem, m, train_qk, svd_every, device) for spec in specs],
                        n_jobs, desc=desc)
    rows, losses, spectra = zip(*done)
    return Sweep(pd.DataFrame(list(rows)), pd.concat(losses, ignore_index=True),
                 pd.concat(spectra, ignore_index=True))


@dataclass
class InitAnatomy:
    """Attention at initialization: one S_i, the singular values of its block with and without X_i."""

    S: np.ndarray                # (N, N) attention matrix of sample 0
    sv_attention: np.ndarray     # singular values of S_0 X_0 W_V
    sv_residual: np.ndarray      # singular values of S_0 X_0 W_V + X_0
    stable_ranks: pd.DataFrame   # mean stable rank of S against beta


def init_anatomy(problem: Problem, seed: int, beta: float, betas, m: int) -> InitAnatomy:
    """Softmax rank collapse at init for one seed: S at ``beta``, and stable rank over ``betas``."""
    X, Y = problem(seed)
    d, d_y = X.shape[-1], Y.shape[-1]
    with torch.no_grad():
        def attention_at(b: float):
            spec = RunSpec(seed, float(b), 0.0, 1, 0.0, 0)
            return build_model(spec, d, m, d_y, train_qk=True).attention(X, 0)
        S, SXW = attention_at(beta)
        ranks = pd.DataFrame({"beta": [float(b) for b in betas],
                              "stable_rank": [stable_rank(attention_at(b)[0]) for b in betas]})
        return InitAnatomy(S[0].numpy(), torch.linalg.svdvals(SXW[0]).numpy(),
                           torch.linalg.svdvals(SXW[0] + X[0]).numpy(), ranks)

