"""icl_compression at paper scale: task-vector, early-exit and readout accuracy for every model of model_paths,
on tiny random models saved as local Hugging Face folders (Llama, Pythia's GPT-NeoX, GPT-J layouts)."""
import numpy as np
import pandas as pd
import pytest
import torch

from shared.errors import MissingInputError
from shared.papers.icl_compression.experiments import (ProfileSettings, model_summary, patched_layers, profile_model,
                                                       profile_models)
from shared.toolkit import llm

SETTINGS = ProfileSettings(tasks=["copy", "to_upper", "list_first"], n_per_task=6, k_main=2, seed=0,
                           prompt_format="{x}->{y}\n", batch_size=8, tv_queries=2, tv_batch_size=4, tv_layers=[],
                           tdnv_reduce="mean", readout_folds=2, readout_alpha=1.0)


def tiny(kind: str, vocab: int):
    from transformers import GPTJConfig, GPTJForCausalLM, GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(0)
    if kind == "llama":
        return llm.random_llama(vocab, n_layers=2, hidden_size=32)
    if kind == "pythia":
        return GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=3,
                                                num_attention_heads=4, intermediate_size=64,
                                                max_position_embeddings=256)).eval()
    return GPTJForCausalLM(GPTJConfig(vocab_size=vocab, n_embd=32, n_layer=2, n_head=4, rotary_dim=8,
                                      n_positions=256)).eval()


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("icl_models")
    tok = llm.toy_tokenizer()
    out = {}
    for kind in ("llama", "pythia", "gptj"):
        tiny(kind, len(tok)).save_pretrained(root / kind)
        tok.save_pretrained(root / kind)
        out[kind] = root / kind
    return out


def test_every_model_gets_task_vector_early_exit_and_readout_accuracy(folders):
    torch.set_num_threads(1)
    names = [name for name, _, _ in profile_models(folders, SETTINGS, "cpu", torch.float32, skip="llama")]
    assert names == ["pythia", "gptj"]  # the main model (skip) is not run twice
    results = {name: (acc, table) for name, acc, table in profile_models(folders, SETTINGS, "cpu", torch.float32)}
    for name, n_layers in (("llama", 2), ("pythia", 3), ("gptj", 2)):
        acc, table = results[name]
        assert 0 <= acc <= 1 and len(table) == n_layers and (table["model"] == name).all()
        assert table["layer"].tolist() == list(range(1, n_layers + 1)) and table["depth"].iloc[-1] == 1.0
        assert np.isfinite(table["tdnv"]).all() and (table["tdnv"] > 0).all()
        for column in ("task_vector_acc", "early_exit_acc", "readout_acc"):
            assert table[column].between(0, 1).all(), (name, column)
        assert table["early_exit_acc"].iloc[-1] == pytest.approx(acc)  # the logit lens at L is the model's answer


def test_the_main_model_profile_matches_the_loaded_folder(folders):
    model, tok = llm.load_causal_lm(folders["llama"], "cpu")
    acc, table = profile_model("llama", model, tok, SETTINGS)
    again = dict((n, (a, t)) for n, a, t in profile_models({"llama": folders["llama"]}, SETTINGS, "cpu", torch.float32))
    assert acc == again["llama"][0] and np.allclose(table["tdnv"], again["llama"][1]["tdnv"])


def test_a_missing_model_folder_names_the_parameter(folders, tmp_path):
    bad = {"llama": folders["llama"], "pythia-70m": tmp_path / "nowhere"}
    with pytest.raises(MissingInputError, match="model_paths.pythia-70m"):
        list(profile_models(bad, SETTINGS, "cpu", torch.float32, skip="llama"))
    with pytest.raises(MissingInputError, match="model_paths.ghost"):
        llm.resolve_models({"ghost": str(tmp_path / "ghost")}, "paper")


def test_patched_layers():
    assert patched_layers([], 3) == [1, 2, 3]
    assert patched_layers([2, 21, 26], 24) == [2, 21]
    assert patched_layers([26], 3) == [1, 2, 3]


def test_model_summary_reads_the_layer_table(folders):
    model, tok = llm.load_causal_lm(folders["pythia"], "cpu")
    acc, table = profile_model("pythia", model, tok, SETTINGS)
    row = model_summary("pythia", acc, table)
    assert row["n_layers"] == 3 and row["icl_acc"] == acc and 1 <= row["argmin_layer"] <= 3
    assert row["task_vector_peak_acc"] == table["task_vector_acc"].max()
    assert row["readout_acc_L-1"] == table["readout_acc"].iloc[1]


def test_model_figures_draw_every_model(folders):
    import matplotlib

    matplotlib.use("Agg")
    from shared.papers.icl_compression import figures

    tables = [table for _, _, table in profile_models(folders, SETTINGS, "cpu", torch.float32)]
    fig = figures.models_accuracy(pd.concat(tables, ignore_index=True))
    assert all(len(ax.get_lines()) >= 3 for ax in fig.axes[:3])  # a line per model (the legend adds handles)
    assert sorted(t.get_text() for t in fig.axes[2].get_legend().get_texts()) == ["gptj", "llama", "pythia"]
    readout = tables[0].assign(task="all", accuracy=tables[0]["readout_acc"])
    tv = tables[0].dropna(subset=["task_vector_acc"]).assign(task="all", accuracy=lambda t: t["task_vector_acc"])
    fig = figures.readout_layerwise(tables[0]["tdnv"].to_numpy(), 1, tv, readout, tables[0]["early_exit_acc"], 0.1, "t")
    assert len(fig.axes) == 2
