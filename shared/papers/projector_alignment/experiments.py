"""projector_alignment: pretrain the frozen parts, train the projector per lambda, measure alignment and entropy."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from shared.progress import progress
from shared.toolkit import alignment as al
from shared.toolkit.mllm import MLPProjector, PatchCNN, TinyCausalLM, freeze
from shared.papers.projector_alignment import scenes as sc

PROJECTOR_SEED = 100   # the same projector init in every arm: the arms differ in lambda only


def split_digits(y: np.ndarray, seed: int, n_train: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle the digit indices with ``seed``: the first ``n_train`` build training scenes, the rest evaluation."""
    order = np.random.default_rng(seed).permutation(len(y))
    return order[:n_train], order[n_train:]


def pretrain_encoder(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, steps: int, seed: int,
                     batch: int = 128, lr: float = 2e-3) -> tuple[PatchCNN, dict]:
    """A PatchCNN trained on single tinted digits (digit head + color head), then frozen; held-out accuracies."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    enc = PatchCNN(heads={"digit": 10, "color": 3})
    opt = torch.optim.Adam(enc.parameters(), lr=lr)
    Xt, yt = torch.as_tensor(X).reshape(-1, 28, 28), torch.as_tensor(y).long()
    for _ in progress(range(steps), desc="encoder"):
        idx = torch.as_tensor(train)[torch.randint(len(train), (batch,), generator=g)]
        colors = torch.randint(3, (batch,), generator=g)
        out = enc.classify(sc.tint(Xt[idx], colors))
        loss = F.cross_entropy(out["digit"], yt[idx]) + F.cross_entropy(out["color"], colors)
        opt.zero_grad()
        loss.backward()
        opt.step()
    freeze(enc)
    idx = torch.as_tensor(test)
    colors = torch.randint(3, (len(idx),), generator=g)
    with torch.no_grad():
        out = enc.classify(sc.tint(Xt[idx], colors))
    return enc, {"digit_acc": float((out["digit"].argmax(1) == yt[idx]).float().mean()),
                 "color_acc": float((out["color"].argmax(1) == colors).float().mean())}


def pretrain_lm(steps: int, seed: int, batch: int = 64, lr: float = 1e-3, d_model: int = 128,
                n_layers: int = 4) -> tuple[TinyCausalLM, float]:
    """The toy LM: 16 context words (each the color or digit word of the object under patch k), then
    ``<bos>`` + caption + ``<eos>``; loss on the caption only. It learns to copy from the context."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 1)
    lm = TinyCausalLM(len(sc.VOCAB), d_model=d_model, n_layers=n_layers)
    opt = torch.optim.AdamW(lm.parameters(), lr=lr)
    loss = torch.tensor(math.nan)
    for _ in progress(range(steps), desc="language model"):
        digits, colors = torch.randint(10, (batch, 4), generator=g), torch.randint(3, (batch, 4), generator=g)
        text = text_ids(sc.caption_ids(digits, colors))
        ids = torch.cat([sc.context_ids(digits, colors, g), text], dim=1)
        logits = lm(lm.embed(ids))[:, sc.GRID ** 2:-1]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, sc.GRID ** 2 + 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return freeze(lm), float(loss.detach())


def text_ids(captions: torch.Tensor) -> torch.Tensor:
    """``<bos>`` + caption + ``<eos>`` (scene vocabulary)."""
    n = captions.shape[0]
    return torch.cat([torch.full((n, 1), sc.BOS), captions, torch.full((n, 1), sc.EOS)], dim=1)


@dataclass
class Backbone:
    """A frozen LM (``input_embeddings()``, ``forward(embeds) -> logits``) and the LM id of each scene word."""

    lm: torch.nn.Module
    word_ids: torch.Tensor      # (len(VOCAB),) scene vocabulary -> LM vocabulary

    def embeddings(self) -> torch.Tensor:
        """The LM's input embeddings of the scene words, (len(VOCAB), D), float32."""
        return self.lm.input_embeddings()[self.word_ids].detach().float()

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        E = self.lm.input_embeddings()
        return E[self.word_ids.to(E.device)[ids.to(E.device)]]

    def logits(self, embeds: torch.Tensor) -> torch.Tensor:
        """Logits restricted to the scene words (the LM may have a larger vocabulary)."""
        return self.lm(embeds)[..., self.word_ids.to(embeds.device)].float()


def toy_backbone(lm: TinyCausalLM) -> Backbone:
    return Backbone(lm, torch.arange(len(sc.VOCAB)))


@torch.no_grad()
def encode(encoder, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Frozen patch features (N, 16, d) of scene images."""
    return torch.cat([encoder.patches(images[i:i + batch]).float().cpu() for i in range(0, len(images), batch)])


def caption_loss(backbone: Backbone, tokens: torch.Tensor, captions: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``<bos>`` + caption + ``<eos>`` after the projected patch tokens (loss on the caption)."""
    text = text_ids(captions)
    embeds = torch.cat([tokens.to(backbone.embed(text[:1]).dtype), backbone.embed(text)], dim=1)
    logits = backbone.logits(embeds)[:, tokens.shape[1]:-1]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), text[:, 1:].reshape(-1).to(logits.device))


def aligned_targets(backbone: Backbone, patch_words: torch.Tensor) -> torch.Tensor:
    """e_bar_p: the mean input embedding of the words of each patch's object, (N, 16, D)."""
    return backbone.embeddings()[patch_words].mean(-2)


def entropy_row(step: int, V: torch.Tensor, P: torch.Tensor) -> dict:
    row = {"step": step}
    for name, Z in (("encoder", V), ("projector", P)):
        for center in (False, True):
            h, erank = al.matrix_entropy(Z, center=center)
            tag = "centered" if center else "uncentered"
            row[f"{name}_entropy_{tag}"], row[f"{name}_erank_{tag}"] = h, erank
    return row


def train_projector(backbone: Backbone, V: torch.Tensor, scenes: sc.Scenes, lam: float, steps: int,
                    V_eval: torch.Tensor, batch: int = 32, lr: float = 1e-3, log_every: int = 50,
                    seed: int = 0) -> tuple[MLPProjector, pd.DataFrame]:
    """Train the projector on ``L_cap + lam * mean(1 - cos(P(v_p), e_bar_p))``; the LM and encoder stay frozen.
    Returns the projector and a trace (step, losses, entropy of v and P(v) on ``V_eval``)."""
    torch.manual_seed(PROJECTOR_SEED)
    proj = MLPProjector(V.shape[-1], backbone.embeddings().shape[-1])
    device = backbone.lm.input_embeddings().device
    proj.to(device)
    opt = torch.optim.AdamW(proj.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed + 2)
    captions, targets = scenes.captions(), aligned_targets(backbone, scenes.patch_words())
    rows = []
    for step in progress(range(steps + 1), desc=f"projector, lambda={lam:g}"):
        if step % log_every == 0 or step == steps:
            with torch.no_grad():
                rows.append(entropy_row(step, V_eval, proj(V_eval.to(device)).float().cpu()))
        if step == steps:
            break
        idx = torch.randint(len(V), (batch,), generator=g)
        tokens = proj(V[idx].to(device))
        cap = caption_loss(backbone, tokens, captions[idx])
        align = al.patch_aligned_loss(tokens.float(), targets[idx].to(device))
        loss = cap + lam * align if lam else cap
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % log_every == 0:
            rows[-1].update(caption_loss=float(cap.detach()), align_loss=float(align.detach()))
    return freeze(proj), pd.DataFrame(rows)


@torch.no_grad()
def greedy_captions(backbone: Backbone, tokens: torch.Tensor, length: int = sc.CAPTION_LEN) -> torch.Tensor:
    """Greedy decoding of ``length`` scene words after the patch tokens and ``<bos>``."""
    ids = torch.full((tokens.shape[0], 1), sc.BOS)
    for _ in range(length):
        embeds = torch.cat([tokens.to(backbone.embed(ids[:1]).dtype), backbone.embed(ids)], dim=1)
        ids = torch.cat([ids, backbone.logits(embeds)[:, -1].argmax(-1, keepdim=True).cpu()], dim=1)
    return ids[:, 1:]


@torch.no_grad()
def evaluate(backbone: Backbone, proj: MLPProjector, V: torch.Tensor, scenes: sc.Scenes) -> dict:
    """Caption accuracy and every alignment / entropy metric on held-out scenes."""
    device = backbone.lm.input_embeddings().device
    P = proj(V.to(device)).float().cpu()
    E = backbone.embeddings().cpu()
    own = scenes.patch_words()
    digits, colors = scenes.object_words()
    predicted = greedy_captions(backbone, P.to(device))
    cos_own, cos_other = al.own_other_cos(P, E, own, sc.CONTENT_IDS)
    out = {"caption_acc": float((predicted == scenes.captions()).float().mean()),
           "cos_own": cos_own, "cos_other": cos_other, "cos_gap": cos_own - cos_other,
           "span_fraction": al.mean_span_fraction(P, E, own),
           "digit_top1": al.retrieval_top1(P, E, sc.DIGIT_IDS, own[..., 1]),
           "color_top1": al.retrieval_top1(P, E, sc.COLOR_IDS, own[..., 0]),
           "grounding": al.grounding_accuracy(P, E, digits, sc.CELL_TO_OBJECT)}
    out.update({k: v for k, v in entropy_row(-1, V, P).items() if k != "step"})
    return out


def patch_table(backbone: Backbone, proj: MLPProjector, V: torch.Tensor, scenes: sc.Scenes) -> pd.DataFrame:
    """Per patch: span fraction and best single-word cosine among its own words (figure 4)."""
    with torch.no_grad():
        P = proj(V.to(backbone.lm.input_embeddings().device)).float().cpu()
    E, own = backbone.embeddings().cpu(), scenes.patch_words()
    return pd.DataFrame({"span_fraction": al.span_fraction(P, E[own]).reshape(-1).numpy(),
                         "best_word_cos": al.word_cosines(P, E).gather(-1, own).amax(-1).reshape(-1).numpy()})


def run_arms(backbone: Backbone, encoder, X, y, train_pool, eval_pool, lambdas: list, cfg_steps: int,
             n_train_scenes: int, n_eval_scenes: int, seed: int, batch: int = 32, lr: float = 1e-3,
             log_every: int = 50) -> dict:
    """Scenes, frozen features, one projector per lambda; returns metrics, traces, projectors and the data."""
    train_scenes = sc.make_scenes(X, y, train_pool, n_train_scenes, seed + 10)
    eval_scenes = sc.make_scenes(X, y, eval_pool, n_eval_scenes, seed + 11)
    V, V_eval = encode(encoder, train_scenes.images), encode(encoder, eval_scenes.images)
    metrics, traces, projectors = {}, [], {}
    for lam in lambdas:
        proj, trace = train_projector(backbone, V, train_scenes, float(lam), cfg_steps, V_eval, batch, lr,
                                      log_every, seed)
        metrics[float(lam)] = evaluate(backbone, proj, V_eval, eval_scenes)
        traces.append(trace.assign(lam=float(lam)))
        projectors[float(lam)] = proj
    return {"metrics": metrics, "trace": pd.concat(traces, ignore_index=True), "projectors": projectors,
            "V_eval": V_eval, "eval_scenes": eval_scenes}


def metrics_table(metrics: dict) -> pd.DataFrame:
    return pd.DataFrame([{"lam": lam, **m} for lam, m in metrics.items()])
