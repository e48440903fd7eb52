"""generalized_nc: the experiments of the notebook (closed forms, softmax codes, spherical UFM, cosine-classifier nets)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from shared.errors import ParameterError
from shared.progress import progress
from shared.toolkit import gnc
from shared.toolkit.cifar import random_crop_flip
from shared.toolkit.models.mlp import MLP
from shared.toolkit.models.resnet import resnet18
from shared.toolkit.train import log_spaced

ENCODERS = ("mlp", "resnet18")
Split = tuple[torch.Tensor, torch.Tensor]


# ---------------------------------------------------------------- closed forms and codes

def closed_forms() -> pd.DataFrame:
    """Exact GNC2 against its closed form: K points on the circle (1 - cos 2pi/K) and simplex ETFs (K/(K-1))."""
    rows = [{"case": f"circle K={K}", "measured": gnc.gnc2(gnc.circle_code(K)), "exact": 1 - math.cos(2 * math.pi / K)}
            for K in (5, 10, 17)]
    rows += [{"case": f"simplex K={K} d={d}", "measured": gnc.gnc2(gnc.simplex_code(K, d)), "exact": K / (K - 1)}
             for K, d in ((3, 2), (4, 3), (10, 12))]
    out = pd.DataFrame(rows)
    return out.assign(error=(out.measured - out.exact).abs())


def solve_codes(pairs: Sequence[Sequence[int]], iters: int, restarts: int, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """rho*(K, d) for every (K, d) in ``pairs``: a table (K, d, rho, min_angle) and the codes {(K, d): W}."""
    rows, codes = [], {}
    for K, d in progress([tuple(p) for p in pairs], desc="softmax codes"):
        rho, W = gnc.softmax_code(K, d, iters=iters, restarts=restarts, seed=seed)
        codes[(K, d)] = W
        rows.append({"K": K, "d": d, "rho": rho, "min_angle": gnc.min_pairwise_angle(W)})
    return pd.DataFrame(rows), codes


def rho_star(codes: pd.DataFrame, K: int, d: int) -> float:
    """The solved rho*(K, d) (NaN if that pair was not solved)."""
    hit = codes[(codes.K == K) & (codes.d == d)]
    return float(hit.rho.iloc[0]) if len(hit) else math.nan


# ---------------------------------------------------------------- spherical UFM

def ufm_heatmap(pairs: Sequence[Sequence[int]], inv_taus: Sequence[float], per_class: int, steps: int, seed: int,
                codes: pd.DataFrame) -> pd.DataFrame:
    """Final GNC metrics of the spherical UFM over (K, d) x tau, with ratio = GNC2 / rho*(K, d)."""
    rows = []
    for (K, d), inv_tau in progress([(tuple(p), t) for p in pairs for t in inv_taus], desc="UFM heat map"):
        final = gnc.spherical_ufm(K, d, per_class, inv_tau, steps, seed, eval_points=0).history.iloc[-1]
        rows.append({"K": K, "d": d, "inv_tau": inv_tau, **final.to_dict()})
    out = pd.DataFrame(rows)
    return out.assign(ratio=[r.gnc2 / rho_star(codes, r.K, r.d) for r in out.itertuples()])


def ufm_runs(K: int, d: int, per_class: int, inv_taus: Sequence[float], steps: int, seeds: Sequence[int],
             rho: float, eval_points: int = 12) -> tuple[pd.DataFrame, dict]:
    """Spherical-UFM histories for every tau and seed (columns inv_tau, seed, ratio = GNC2/rho*) and the final
    one-vs-rest distances {(inv_tau, seed): rho_k}."""
    histories, rhos = [], {}
    for inv_tau, seed in progress([(t, s) for t in inv_taus for s in seeds], desc="UFM runs"):
        run = gnc.spherical_ufm(K, d, per_class, inv_tau, steps, seed, eval_points=eval_points)
        histories.append(run.history.assign(inv_tau=inv_tau, seed=seed))
        rhos[(inv_tau, seed)] = gnc.one_vs_rest_distances(run.W)
    history = pd.concat(histories, ignore_index=True)
    return history.assign(ratio=history.gnc2 / rho), rhos


def final_rows(history: pd.DataFrame, by: str = "step") -> pd.DataFrame:
    """The last row of every (inv_tau, seed) run."""
    return history.sort_values(by).groupby(["inv_tau", "seed"], as_index=False).last()


# ---------------------------------------------------------------- networks with a cosine classifier

@dataclass(frozen=True)
class NetSettings:
    epochs: int
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_schedule: str = "step"  # cosine decay per optimizer step, or per epoch (official)
    eval_points: int = 10
    augment: bool = False
    checkpoint_every: int = 0  # save the model every this many epochs (0: never)
    eval_batch_size: int = 1000


def rotate(x: torch.Tensor, generator: torch.Generator, degrees: float = 15.0) -> torch.Tensor:
    """Per-image random rotation in [-degrees, degrees] (RandomRotation), zero (mean colour) outside."""
    angle = (torch.rand(len(x), generator=generator) * 2 - 1) * math.radians(degrees)
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack([torch.stack([cos, -sin, torch.zeros_like(cos)], 1),
                         torch.stack([sin, cos, torch.zeros_like(cos)], 1)], 1).to(x)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False)


def augment_images(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The official "regular" augmentation: RandomCrop(pad 4 for 32 px, 8 for 64 px), flip, rotation +-15 deg."""
    return rotate(random_crop_flip(x, generator, padding=4 if x.shape[-1] <= 32 else 8), generator)


def build_net(encoder: str, in_features: int, dim: int, num_classes: int, inv_tau: float, width: int = 512) -> nn.Module:
    """An encoder ending in Linear(., d) with bias (its output is the feature), then a bias-free cosine classifier."""
    if encoder == "mlp":
        backbone = MLP(in_features, dim, widths=(width, width))
    elif encoder == "resnet18":
        backbone = resnet18(num_classes=dim)
    else:
        raise ParameterError("encoder", f"unknown encoder {encoder!r}", ENCODERS)
    return gnc.CosineNet(backbone, dim, num_classes, inv_tau)


@torch.no_grad()
def features(model: nn.Module, x: torch.Tensor, batch_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    model.eval()
    outs = [model(x[i : i + batch_size].to(device)) for i in range(0, len(x), batch_size)]
    return tuple(torch.cat([o[j] for o in outs]).float().cpu() for j in (0, 1))


def evaluate(model: nn.Module, train: Split, test: Split, num_classes: int, batch_size: int, device: torch.device) -> dict:
    """Accuracies, NCC accuracies and GNC metrics of the clean training features."""
    logits, H = features(model, train[0], batch_size, device)
    test_logits, H_test = features(model, test[0], batch_size, device)
    y, y_test = train[1].cpu(), test[1].cpu()
    W = model.fc.weight.detach().cpu()
    return {"train_acc": (logits.argmax(1) == y).float().mean().item(),
            "test_acc": (test_logits.argmax(1) == y_test).float().mean().item(),
            "ncc_train": gnc.ncc_accuracy(H, y, H, y, num_classes),
            "ncc_test": gnc.ncc_accuracy(H, y, H_test, y_test, num_classes),
            **gnc.gnc_metrics(W, H, y)}


def train_net(model: nn.Module, train: Split, test: Split, num_classes: int, settings: NetSettings, seed: int,
              device: str | torch.device = "cpu", checkpoint_dir: Path | None = None, name: str = "run") -> pd.DataFrame:
    """SGD (momentum, Nesterov, weight decay) with cosine decay, CE on the cosine logits; metrics on a log grid."""
    s, device = settings, torch.device(device)
    model.to(device)
    x_train, y_train = train
    opt = torch.optim.SGD(model.parameters(), lr=s.lr, momentum=s.momentum, nesterov=True, weight_decay=s.weight_decay)
    steps_per_epoch = math.ceil(len(x_train) / s.batch_size)
    total = s.epochs * (steps_per_epoch if s.lr_schedule == "step" else 1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total)
    generator = torch.Generator().manual_seed(seed)
    grid = set(log_spaced(s.epochs, s.eval_points))
    rows = []
    for epoch in progress(range(1, s.epochs + 1), desc=name, leave=False, mininterval=2):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        losses = []
        for i in range(0, len(order), s.batch_size):
            idx = order[i : i + s.batch_size]
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            x = x_train[idx]
            if s.augment:
                x = augment_images(x, generator)
            loss = F.cross_entropy(model(x.to(device))[0], y_train[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if s.lr_schedule == "step":
                sched.step()
            losses.append(loss.detach())
        if s.lr_schedule != "step":
            sched.step()
        if checkpoint_dir is not None and s.checkpoint_every and epoch % s.checkpoint_every == 0:
            checkpoint_dir.mkdir(parents=True, exist_ok=True)
            torch.save(model.state_dict(), checkpoint_dir / f"{name}_epoch{epoch}.pt")
        if epoch in grid:
            row = {"epoch": epoch, "train_loss": torch.stack(losses).mean().item()}
            rows.append(row | evaluate(model, train, test, num_classes, s.eval_batch_size, device))
    return pd.DataFrame(rows)


@dataclass
class NetRuns:
    history: pd.DataFrame          # one row per (inv_tau, epoch on the grid)
    W: dict                        # inv_tau -> normalized classifier (K x d)
    test_features: dict            # inv_tau -> normalized test features (N x d)
    test_labels: np.ndarray
    rho: dict                      # inv_tau -> final one-vs-rest distances (K,)


def run_taus(encoder: str, train: Split, test: Split, num_classes: int, dim: int, inv_taus: Sequence[float],
             settings: NetSettings, seed: int, width: int = 512, device: str | torch.device = "cpu",
             checkpoint_dir: Path | None = None, desc: str = "net") -> NetRuns:
    """Train one cosine-classifier net per temperature (torch seeded with ``seed`` before each build)."""
    histories, Ws, feats, rhos = [], {}, {}, {}
    in_features = int(np.prod(train[0].shape[1:]))
    for inv_tau in progress(list(inv_taus), desc=desc):
        torch.manual_seed(seed)
        model = build_net(encoder, in_features, dim, num_classes, inv_tau, width)
        history = train_net(model, train, test, num_classes, settings, seed, device, checkpoint_dir,
                            name=f"{desc}_invtau{inv_tau:g}_seed{seed}")
        histories.append(history.assign(inv_tau=inv_tau, seed=seed))
        Ws[inv_tau] = gnc.rownorm(model.fc.weight.detach().cpu())
        feats[inv_tau] = gnc.rownorm(features(model, test[0], settings.eval_batch_size, torch.device(device))[1])
        rhos[inv_tau] = gnc.one_vs_rest_distances(Ws[inv_tau])
    return NetRuns(pd.concat(histories, ignore_index=True), Ws, feats, test[1].numpy(), rhos)


def last_epoch(history: pd.DataFrame, rho: float) -> pd.DataFrame:
    """The final row of every temperature, with ratio = GNC2 / rho*."""
    final = history.sort_values("epoch").groupby("inv_tau", as_index=False).last()
    return final.assign(ratio=final.gnc2 / rho)


def check_inv_taus(name: str, values: Sequence[float]) -> list[float]:
    """inv_tau lists must contain 1 (tau = 1) and at least one smaller temperature."""
    values = list(values)
    if 1 not in values or not any(v > 1 for v in values) or any(v <= 0 for v in values):
        raise ParameterError(name, f"{values!r} must hold 1 and at least one value > 1 (inverse temperatures)", ">0, with 1")
    return values


def small_tau_of(inv_taus: Sequence[float], prefer: float = 5) -> float:
    """The small temperature shown next to tau = 1: inv_tau = ``prefer`` if listed, else the largest."""
    return prefer if prefer in inv_taus else max(inv_taus)
