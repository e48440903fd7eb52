"""The experiments of icl_compression: TDNV and ICL accuracy over K, task vectors, bias-variance, noise.

Prompts are drawn from ``numpy.random.default_rng([seed, stream, task, K, noise])``, so one
experiment's prompts do not depend on the other experiments. The K sweep (E1) is paired: each prompt's
query and its K_max demonstrations are drawn once, and the K-shot prompt keeps the first K of them, so
that TDNV and accuracy change with K only, not with a fresh draw of queries at each K.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import torch

from shared.papers.icl_compression.metrics import relative_bias_variance, tdnv_per_layer
from shared.papers.icl_compression.readout import majority_chance, readout_accuracy
from shared.papers.icl_compression.states import (LastTokenRun, last_token_states_at, logit_lens_top1, patched_top1,
                                                  run_last_token)
from shared.papers.icl_compression.tasks import (DEFAULT_FORMAT, TASKS, Prompt, answer_token_id, build_prompt, get_task,
                                                 make_prompts)
from shared.toolkit import llm

STREAM_ICL, STREAM_QUERIES, STREAM_BIAS, STREAM_NOISE, STREAM_NESTED, STREAM_NULL = range(6)
# The paper's models whose TDNV minimum its figures place at about 0.30-0.38 of depth (GPT-J, Pythia-2.8B,
# Mamba), in the order the claims prefer them; pythia-14m and the early Amber checkpoints do not compress.
PAPER_COMPRESSING = ("gpt-j-6b", "pythia-2.8b", "mamba-2.8b-hf")
TASK_IDS = {name: i for i, name in enumerate(TASKS)}


def prompt_rng(seed: int, stream: int, task: str, k: int, noise_ratio: float = 0.0) -> np.random.Generator:
    return np.random.default_rng([seed, stream, TASK_IDS[task], k, round(noise_ratio * 1000)])


@dataclass
class IclEval:
    """Prompts of several tasks, their answer tokens, and one pass of the model over them."""

    tasks: list[str]
    prompts: list[Prompt]
    answers: torch.Tensor  # (n,) answer token ids
    run: LastTokenRun

    @property
    def labels(self) -> np.ndarray:
        return np.array([self.tasks.index(p.task) for p in self.prompts])

    def accuracy(self) -> float:
        """ICL accuracy: the greedy next token is the answer token."""
        return float((self.run.top1 == self.answers).double().mean())

    def task_accuracy(self) -> dict[str, float]:
        correct = (self.run.top1 == self.answers).numpy()
        return {t: float(correct[self.labels == i].mean()) for i, t in enumerate(self.tasks)}

    def early_exit_accuracy(self, model) -> np.ndarray:
        """(L,) logit-lens accuracy of ``model`` (the one that ran) after each layer; at L the ICL accuracy."""
        return (logit_lens_top1(model, self.run) == self.answers).double().mean(1).numpy()

    def readout(self, n_folds: int = 2, seed: int = 0, alpha: float = 1.0) -> pd.DataFrame:
        """(layer, task, accuracy): held-out accuracy of a per-layer linear readout of the answer token
        (:func:`readout.readout_accuracy`), the early-exit substitute; no forward pass."""
        return readout_accuracy(self.run.states, self.answers.numpy(), self.labels, self.tasks, n_folds, seed, alpha)

    def readout_chance(self, n_folds: int = 2, seed: int = 0) -> float:
        """The readout's chance level: held-out accuracy of the training folds' most frequent answer."""
        return majority_chance(self.answers.numpy(), self.labels, n_folds, seed)

    def tdnv(self, reduce: str = "mean") -> np.ndarray:
        """(L,) TDNV per layer, index 0 = layer 1."""
        return tdnv_per_layer(self.run.states, self.labels, reduce)

    def task_vectors(self) -> torch.Tensor:
        """(L, T, d) per-task mean of the block outputs (pre-norm at L): what a patch inserts."""
        blocks, labels = self.run.block_outputs(), torch.as_tensor(self.labels)
        return torch.stack([blocks[:, labels == i].mean(1) for i in range(len(self.tasks))], 1)


def evaluate(model, tokenizer, prompts: list[Prompt], tasks: list[str], batch_size: int,
             desc: str | None = None) -> IclEval:
    """Answer tokens of ``prompts`` and one left-padded pass of the model over them."""
    answers = torch.tensor([answer_token_id(tokenizer, p.text, p.answer) for p in prompts])
    run = run_last_token(model, tokenizer, [p.text for p in prompts], batch_size, desc=desc)
    return IclEval(list(tasks), prompts, answers, run)


def icl_prompts(tasks: list[str], n: int, k: int, seed: int, fmt: str = DEFAULT_FORMAT, stream: int = STREAM_ICL,
                noise_ratio: float = 0.0, fixed_query: str | None = None) -> list[Prompt]:
    """``n`` prompts with ``k`` demonstrations for each task, task after task."""
    return [p for t in tasks for p in make_prompts(t, n, k, prompt_rng(seed, stream, t, k, noise_ratio), fmt,
                                                    noise_ratio=noise_ratio, fixed_query=fixed_query)]


def nested_icl_prompts(tasks: list[str], n: int, k_list: list[int], seed: int,
                       fmt: str = DEFAULT_FORMAT) -> dict[int, list[Prompt]]:
    """``n`` prompts per task for every K of ``k_list``, paired: prompt i of a task has the same query at
    every K, and its K demonstrations are the first K of one draw of max(k_list)."""
    k_max = max(k_list)
    out: dict[int, list[Prompt]] = {k: [] for k in k_list}
    for t in tasks:
        spec, rng = get_task(t), prompt_rng(seed, STREAM_NESTED, t, 0)
        for _ in range(n):
            demos = [(x, spec.answer(x)) for x in (spec.sample_input(rng) for _ in range(k_max))]
            query = spec.sample_input(rng)
            for k in k_list:
                out[k].append(Prompt(build_prompt(demos[:k], query, fmt), spec.answer(query), t, query))
    return out


def k_sweep(model, tokenizer, tasks: list[str], n: int, k_list: list[int], seed: int,
            fmt: str = DEFAULT_FORMAT, batch_size: int = 16) -> dict[int, IclEval]:
    """E1: ``n`` prompts per task at each K (paired over K: :func:`nested_icl_prompts`)."""
    prompts = nested_icl_prompts(tasks, n, k_list, seed, fmt)
    return {k: evaluate(model, tokenizer, prompts[k], tasks, batch_size, desc=f"K={k}") for k in k_list}


def shuffled_label_tdnv(ev: IclEval, seed: int, reduce: str = "mean") -> np.ndarray:
    """(L,) TDNV of the same states with the task labels randomly permuted: the null of no task structure."""
    labels = np.random.default_rng([seed, STREAM_NULL]).permutation(ev.labels)
    return tdnv_per_layer(ev.run.states, labels, reduce)


def main_model(names) -> str:
    """The model the claims are made on: the first of the paper's compressing models (PAPER_COMPRESSING) that
    ``names`` holds, else the first name."""
    names = list(names)
    return next((m for m in PAPER_COMPRESSING if m in names), names[0])


def layer_summary(curve: np.ndarray) -> dict[str, float]:
    """TDNV at layer 1, its minimum and argmin layer (1-based), and its value at the last layer."""
    argmin = int(np.argmin(curve))
    return {"tdnv_layer1": float(curve[0]), "min_tdnv": float(curve[argmin]),
            "argmin_layer": argmin + 1, "tdnv_final": float(curve[-1])}


def k_sweep_tables(evals: dict[int, IclEval], reduce: str = "mean") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-layer table K, layer, tdnv; per-K summary with ICL accuracy and layer_summary)."""
    curves, summary = [], []
    for k, ev in evals.items():
        curve = ev.tdnv(reduce)
        curves.append(pd.DataFrame({"K": k, "layer": np.arange(1, len(curve) + 1), "tdnv": curve}))
        summary.append({"K": k, "icl_acc": ev.accuracy(), **layer_summary(curve)})
    return pd.concat(curves, ignore_index=True), pd.DataFrame(summary)


@dataclass
class TaskVectorResult:
    table: pd.DataFrame         # layer, task, accuracy
    zero_shot_accuracy: float   # the same queries, unpatched

    def by_layer(self) -> pd.Series:
        return self.table.groupby("layer")["accuracy"].mean()


def task_vector_sweep(model, tokenizer, contexts: IclEval, n_queries: int, layers: list[int], seed: int,
                      fmt: str = DEFAULT_FORMAT, batch_size: int = 64) -> TaskVectorResult:
    """E2: patch each task's mean context state into zero-shot prompts ``"{x}->"`` at each layer."""
    queries = icl_prompts(contexts.tasks, n_queries, 0, seed, fmt, stream=STREAM_QUERIES)
    plain = evaluate(model, tokenizer, queries, contexts.tasks, batch_size)
    vectors, labels = contexts.task_vectors(), torch.as_tensor(plain.labels)
    chosen = vectors[[layer - 1 for layer in layers]][:, labels]            # (layers, n, d)
    correct = (patched_top1(model, tokenizer, [q.text for q in queries], layers, chosen, batch_size,
                            desc="task vectors") == plain.answers).numpy()
    rows = [{"layer": layer, "task": t, "accuracy": float(correct[j, plain.labels == i].mean())}
            for j, layer in enumerate(layers) for i, t in enumerate(contexts.tasks)]
    return TaskVectorResult(pd.DataFrame(rows), plain.accuracy())


def bias_variance_sweep(model, tokenizer, tasks: list[str], n: int, k_list: list[int], layer: int, seed: int,
                        fixed_query: str, fmt: str = DEFAULT_FORMAT, batch_size: int = 16) -> pd.DataFrame:
    """E3: relative bias and variance per task at ``layer``, query fixed, mu(inf) = mean at the largest K.

    Only the states at ``layer`` are computed (:func:`last_token_states_at`).
    """
    means: dict[int, torch.Tensor] = {}
    states: dict[int, torch.Tensor] = {}
    labels = None
    for k in sorted(k_list):
        prompts = icl_prompts(tasks, n, k, seed, fmt, STREAM_BIAS, fixed_query=fixed_query)
        states[k] = last_token_states_at(model, tokenizer, [p.text for p in prompts], layer, batch_size,
                                         desc=f"bias K={k}").double()
        labels = torch.as_tensor([tasks.index(p.task) for p in prompts])
        means[k] = torch.stack([states[k][labels == i].mean(0) for i in range(len(tasks))])
    reference = means[max(k_list)]
    rows = [{"K": k, "task": t, **dict(zip(("bias", "variance"),
                                            relative_bias_variance(states[k][labels == i], reference[i])))}
            for k in sorted(k_list) for i, t in enumerate(tasks)]
    return pd.DataFrame(rows)


def noise_sweep(model, tokenizer, tasks: list[str], n: int, k: int, ratios: list[float], seed: int,
                fmt: str = DEFAULT_FORMAT, batch_size: int = 16, reduce: str = "mean") -> pd.DataFrame:
    """ICL accuracy and TDNV minimum when round(ratio * K) demonstrations carry a wrong output."""
    rows = []
    for ratio in ratios:
        ev = evaluate(model, tokenizer, icl_prompts(tasks, n, k, seed, fmt, STREAM_NOISE, noise_ratio=ratio),
                      tasks, batch_size, desc=f"noise {ratio:.1f}")
        rows.append({"noise_ratio": ratio, "icl_acc": ev.accuracy(), **layer_summary(ev.tdnv(reduce))})
    return pd.DataFrame(rows)


def layer_table(name: str, tdnv: np.ndarray, task_vector_acc: pd.Series, early_exit_acc: np.ndarray,
                readout_acc: pd.Series) -> pd.DataFrame:
    """One model's per-layer table: model, layer, depth l/L, tdnv and the three accuracies (NaN where a layer
    was not patched with task vectors)."""
    layers = np.arange(1, len(tdnv) + 1)
    return pd.DataFrame({"model": name, "layer": layers, "depth": layers / len(tdnv), "tdnv": tdnv,
                         "task_vector_acc": task_vector_acc.reindex(layers).to_numpy(),
                         "early_exit_acc": np.asarray(early_exit_acc, dtype=float),
                         "readout_acc": readout_acc.reindex(layers).to_numpy()})


def model_summary(name: str, icl_acc: float, table: pd.DataFrame) -> dict:
    """One row of the model comparison: ICL accuracy, :func:`layer_summary` of the TDNV curve, the task-vector
    peak and its layer, and early-exit (logit lens) and readout accuracy at layer L-1."""
    tv = table.set_index("layer")["task_vector_acc"].dropna()
    return {"model": name, "n_layers": len(table), "icl_acc": icl_acc, **layer_summary(table["tdnv"].to_numpy()),
            "task_vector_peak_acc": float(tv.max()), "task_vector_argmax_layer": int(tv.idxmax()),
            "early_exit_acc_L-1": float(table["early_exit_acc"].iloc[-2]),
            "readout_acc_L-1": float(table["readout_acc"].iloc[-2])}


@dataclass(frozen=True)
class ProfileSettings:
    """The knobs of one model's layerwise profile at K = k (what ``profile_model`` runs)."""

    tasks: list[str]
    n_per_task: int
    k_main: int
    seed: int
    prompt_format: str
    batch_size: int
    tv_queries: int
    tv_batch_size: int
    tv_layers: list[int]
    tdnv_reduce: str
    readout_folds: int
    readout_alpha: float

    @classmethod
    def from_config(cls, cfg) -> "ProfileSettings":
        """The settings of a resolved notebook configuration (attributes of the same names)."""
        return cls(**{f.name: getattr(cfg, f.name) for f in fields(cls)})


def patched_layers(requested: list[int], n_layers: int) -> list[int]:
    """The task-vector layers of a model with ``n_layers`` blocks: ``requested`` within 1..L, or every layer."""
    return [layer for layer in requested if 1 <= layer <= n_layers] or list(range(1, n_layers + 1))


def profile_model(name: str, model, tokenizer, s: ProfileSettings) -> tuple[float, pd.DataFrame]:
    """ICL accuracy and the per-layer table (:func:`layer_table`) of one model at K = ``s.k_main``: TDNV,
    task-vector accuracy, logit-lens early exit and the linear readout, as E1 and E2 compute them."""
    ev = k_sweep(model, tokenizer, s.tasks, s.n_per_task, [s.k_main], s.seed, s.prompt_format, s.batch_size)[s.k_main]
    layers = patched_layers(s.tv_layers, llm.decoder_parts(model).n_layers)
    tv = task_vector_sweep(model, tokenizer, ev, s.tv_queries, layers, s.seed, s.prompt_format, s.tv_batch_size)
    readout = ev.readout(s.readout_folds, s.seed, s.readout_alpha).groupby("layer")["accuracy"].mean()
    return ev.accuracy(), layer_table(name, ev.tdnv(s.tdnv_reduce), tv.by_layer(), ev.early_exit_accuracy(model),
                                      readout)


def profile_models(folders: dict[str, Path], s: ProfileSettings, device, dtype,
                   skip: str | None = None) -> Iterator[tuple[str, float, pd.DataFrame]]:
    """(name, ICL accuracy, per-layer table) of every model of ``folders`` but ``skip``, one loaded at a time.

    A folder that is missing or not a Hugging Face causal LM raises MissingInputError naming
    ``model_paths.<name>``.
    """
    for name, folder in folders.items():
        if name == skip:
            continue
        model, tokenizer = llm.load_causal_lm(llm.require_hf_model(f"model_paths.{name}", folder), device, dtype,
                                              param=f"model_paths.{name}")
        acc, table = profile_model(name, model, tokenizer, s)
        del model
        yield name, acc, table
