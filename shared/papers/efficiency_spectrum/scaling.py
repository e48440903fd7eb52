"""efficiency_spectrum: scaling-law arithmetic (Kaplan 2020, Hoffmann 2022, Besiroglu 2024) and a mini study.

``chinchilla_opt`` solves min L(N, D) = E + A/N^alpha + B/D^beta subject to C = 6ND in closed form;
``mini_scaling_study`` trains tiny char-level causal transformers and ``fit_scaling_law`` fits
L = E + A/N^alpha + B/D^beta by variable projection (an (alpha, beta) grid, NNLS for E, A, B) and a Huber
refinement of the log residual (Hoffmann's criterion).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from torch import nn

# Transcribed constants, with their sources.
CONSTANTS = {
    # Hoffmann et al. 2022, "Training Compute-Optimal LLMs", Approach 3, eq. (10), p. 25 (arXiv 2203.15556 v1)
    "hoffmann": {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28},
    # Besiroglu et al. 2024, "Chinchilla Scaling: A replication attempt", Table 1 / eq. (4) (arXiv 2404.10102)
    "epoch": {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658},
}
# Kaplan et al. 2020, "Scaling Laws for Neural Language Models", eq. (1.1)-(1.2), p. 4 (arXiv 2001.08361)
KAPLAN = {"Nc": 8.8e13, "alpha_N": 0.076, "Dc": 5.4e13, "alpha_D": 0.095}


def chinchilla_loss(N, D, c: dict):
    return c["E"] + c["A"] / np.asarray(N, float) ** c["alpha"] + c["B"] / np.asarray(D, float) ** c["beta"]


def chinchilla_opt(C: float, c: dict) -> dict:
    """Compute-optimal N and D at compute C = 6ND (Hoffmann et al. 2022, eq. 4)."""
    a, b = c["beta"] / (c["alpha"] + c["beta"]), c["alpha"] / (c["alpha"] + c["beta"])
    G = (c["alpha"] * c["A"] / (c["beta"] * c["B"])) ** (1 / (c["alpha"] + c["beta"]))
    N = G * (C / 6) ** a
    D = (C / 6) ** b / G
    return {"C": C, "a": a, "N_opt": N, "D_opt": D, "D_per_N": D / N, "loss": float(chinchilla_loss(N, D, c))}


def kaplan_loss_n(N):
    return (KAPLAN["Nc"] / np.asarray(N, float)) ** KAPLAN["alpha_N"]


def chinchilla_table(budgets=(1e21, 5.76e23, 1e24)) -> pd.DataFrame:
    return pd.DataFrame([{"constants": name, **chinchilla_opt(C, c)} for name, c in CONSTANTS.items()
                         for C in budgets])


# ---------------------------------------------------------------- mini scaling study
class CharLM(nn.Module):
    """A pre-LN causal transformer over characters (heads = max(1, d/32), FFN 4d, learned positions)."""

    def __init__(self, vocab: int, d: int, layers: int, ctx: int):
        super().__init__()
        self.emb, self.pos = nn.Embedding(vocab, d), nn.Embedding(ctx, d)
        block = nn.TransformerEncoderLayer(d, max(1, d // 32), 4 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.body = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm, self.head = nn.LayerNorm(d), nn.Linear(d, vocab)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(ctx), persistent=False)

    def forward(self, x):
        T = x.shape[1]
        h = self.emb(x) + self.pos(torch.arange(T, device=x.device))
        return self.head(self.norm(self.body(h, mask=self.mask[:T, :T], is_causal=True)))

    def non_embedding_params(self) -> int:
        return sum(p.numel() for n, p in self.named_parameters() if not n.startswith(("emb.", "pos.", "head.")))


def char_data(text: str, train_frac: float = 0.9):
    chars = sorted(set(text))
    ids = torch.as_tensor(np.searchsorted(np.array(chars), np.array(list(text))), dtype=torch.long)
    cut = int(train_frac * len(ids))
    return ids[:cut], ids[cut:], len(chars)


def mini_scaling_study(text: str, sizes, checkpoints, seed: int, ctx: int = 64, batch: int = 32,
                       n_val: int = 64, device="cpu", progress=None) -> pd.DataFrame:
    """Validation loss (nats/char) of each (d, layers) model at each step of ``checkpoints``."""
    train, val, vocab = char_data(text)
    g = torch.Generator().manual_seed(1234)
    vstarts = torch.randint(0, len(val) - ctx - 1, (n_val,), generator=g)
    vx = torch.stack([val[s:s + ctx] for s in vstarts]).to(device)
    vy = torch.stack([val[s + 1:s + ctx + 1] for s in vstarts]).to(device)
    rows = []
    for d, layers in sizes:
        torch.manual_seed(seed)
        model = CharLM(vocab, d, layers, ctx).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3 if d < 64 else 2e-3)
        gen = torch.Generator().manual_seed(seed)
        for step in range(1, max(checkpoints) + 1):
            starts = torch.randint(0, len(train) - ctx - 1, (batch,), generator=gen)
            x = torch.stack([train[s:s + ctx] for s in starts]).to(device)
            y = torch.stack([train[s + 1:s + ctx + 1] for s in starts]).to(device)
            loss = nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step in checkpoints:
                model.eval()
                with torch.no_grad():
                    vl = nn.functional.cross_entropy(model(vx).flatten(0, 1), vy.flatten()).item()
                model.train()
                rows.append({"d": d, "layers": layers, "N": model.non_embedding_params(), "step": step,
                             "D": step * batch * ctx, "loss": vl})
        if progress is not None:
            progress.update(1)
    return pd.DataFrame(rows)


def _design(N, D, alpha, beta):
    return np.stack([np.ones_like(N), N ** -alpha, D ** -beta], 1)


def fit_scaling_law(N, D, L, grid=np.arange(0.02, 1.2001, 0.01), delta: float = 1e-3) -> dict:
    """Fit L = E + A/N^alpha + B/D^beta: (alpha, beta) grid with NNLS, then Huber-on-log L-BFGS refinement."""
    from scipy.optimize import minimize, nnls

    N, D, L = (np.asarray(v, float) for v in (N, D, L))
    if not (np.isfinite(L).all() and (L > 0).all()):
        return {"E": math.nan, "A": math.nan, "B": math.nan, "alpha": math.nan, "beta": math.nan,
                "r2_log": math.nan, "max_rel_err": math.nan}
    best = (np.inf, None)
    for a in grid:
        Na = N ** -a
        for b in grid:
            X = np.stack([np.ones_like(N), Na, D ** -b], 1)
            coef, res = nnls(X, L)
            if res < best[0]:
                best = (res, (coef[0], coef[1], coef[2], a, b))
    E, A, B, a, b = best[1]

    def huber(p):
        e, lA, lB, al, be = p
        pred = np.exp(e) + np.exp(lA) * N ** -al + np.exp(lB) * D ** -be
        r = np.log(pred) - np.log(L)
        return np.where(np.abs(r) <= delta, 0.5 * r ** 2, delta * (np.abs(r) - 0.5 * delta)).sum()

    x0 = [math.log(max(E, 1e-6)), math.log(max(A, 1e-6)), math.log(max(B, 1e-6)), a, b]
    opt = minimize(huber, x0, method="L-BFGS-B")
    p = opt.x if opt.fun <= huber(x0) else np.array(x0)
    fit = {"E": float(np.exp(p[0])), "A": float(np.exp(p[1])), "B": float(np.exp(p[2])),
           "alpha": float(p[3]), "beta": float(p[4])}
    pred = predict(fit, N, D)
    ss_res, ss_tot = ((np.log(L) - np.log(pred)) ** 2).sum(), ((np.log(L) - np.log(L).mean()) ** 2).sum()
    fit["r2_log"] = float(1 - ss_res / ss_tot) if ss_tot > 0 else math.nan
    fit["max_rel_err"] = float(np.max(np.abs(pred / L - 1)))
    return fit


def predict(fit: dict, N, D):
    return fit["E"] + fit["A"] * np.asarray(N, float) ** -fit["alpha"] + fit["B"] * np.asarray(D, float) ** -fit["beta"]


def monotone_violations(grid: pd.DataFrame) -> int:
    """How many neighbour pairs break 'loss falls with N at each step and with D for each N' (NaN counts)."""
    piv = grid.pivot_table(index="N", columns="step", values="loss", dropna=False).sort_index()
    v = piv.to_numpy()
    bad = (~(np.diff(v, axis=0) < 0)).sum() + (~(np.diff(v, axis=1) < 0)).sum()
    return int(bad)
