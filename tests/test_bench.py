"""The benchmark script's pure parts (benchmarks/): options, medians, table, cell times, references.

Nothing here times anything; the references are checked against the toolkit for equal results.
"""
import json
import multiprocessing
import sys

import numpy as np
import pytest
import torch

from benchmarks import bench
from benchmarks.measure import (Line, Section, cell_times, collect, fmt, format_table, median_cells, median_or_none,
                                pick, run_measured, top_cells_note)
from benchmarks.reference import (bare_hidden_states, bare_train, class_features, cka_reference, layer_stack,
                                  nc1_reference, synthetic_data)
from shared.toolkit.models.mlp import MLP
from shared.toolkit.neural_collapse import nc1
from shared.toolkit.similarity import cka_matrix

PAPERS = ["alpha", "beta"]


def test_default_options_run_every_section_and_paper_at_smoke():
    opts = bench.parse_options([], papers=PAPERS)
    assert opts.sections == list(bench.SECTIONS) and opts.repeats == 3 and not opts.busy
    assert opts.papers == PAPERS and opts.scales == ["smoke"] and not opts.from_results
    assert opts.sizes == bench.Sizes()


def test_quick_means_one_repeat_small_sizes_and_papers_only_when_named():
    quick = bench.parse_options(["--quick"], papers=PAPERS)
    assert quick.repeats == 1 and quick.papers == [] and quick.sizes == bench.QUICK_SIZES
    named = bench.parse_options(["--quick", "--papers", "beta", "--repeats", "2", "--only", "papers,dvc",
                                 "--scales", "smoke,cpu", "--from-results", "--busy"], papers=PAPERS)
    assert named.papers == ["beta"] and named.repeats == 2 and named.sections == ["papers", "dvc"]
    assert named.scales == ["smoke", "cpu"] and named.from_results and named.busy


def test_the_threads_section_runs_residual_by_default_named_papers_when_asked_and_none_when_quick():
    assert bench.parse_options([], papers=[*PAPERS, "residual_convergence"]).thread_papers == ["residual_convergence"]
    assert bench.parse_options([], papers=PAPERS).thread_papers == []
    assert bench.parse_options(["--quick"], papers=[*PAPERS, "residual_convergence"]).thread_papers == []
    assert bench.parse_options(["--quick", "--thread-papers", "beta,alpha"], papers=PAPERS).thread_papers == [
        "beta", "alpha"]
    skipped = bench.threads_section(bench.parse_options(["--quick"], papers=PAPERS))
    assert skipped.runs == [] and "skipped" in skipped.lines[0].note


def test_the_threads_section_compares_each_policy_with_passive_by_wall_time(monkeypatch):
    def fake_run(paper, scale, env):
        return {"wall": {"2": 10.0, "1": 12.0}[env["PAPERSUITE_THREADS"]] * (3 if "GOMP_SPINCOUNT" in env else 1),
                "cpu": 1.0, "rss": 1.0, "cells": []}

    monkeypatch.setattr(bench, "run_paper", fake_run)
    monkeypatch.setattr(bench.os, "cpu_count", lambda: 2)
    opts = bench.parse_options(["--thread-papers", "alpha", "--repeats", "1"], papers=PAPERS)
    section = bench.threads_section(opts)
    spin, one = section.lines
    assert "spin vs passive" in spin.what and spin.ratio("quiet") == pytest.approx(3.0)
    assert "one vs passive" in one.what and one.ratio("quiet") == pytest.approx(1.2)
    assert {r["side"] for r in section.runs} == {"passive", "spin", "one"}


def test_thread_policies_differ_only_in_threads_and_libgomp_spinning():
    policies = bench.thread_policies(4)
    assert policies["passive"] == {"PAPERSUITE_THREADS": "4"}
    assert policies["spin"] == {"PAPERSUITE_THREADS": "4", "GOMP_SPINCOUNT": "300000"}
    assert policies["one"] == {"PAPERSUITE_THREADS": "1"}


def test_a_measured_command_gets_the_extra_environment(tmp_path):
    command = [sys.executable, "-c", "import os, sys; sys.exit(os.environ['PROBE'] != 'yes')"]
    assert run_measured(command, tmp_path, tmp_path / "log.txt", {"PROBE": "yes"})["wall"] > 0
    with pytest.raises(RuntimeError, match="exited with 1"):
        run_measured(command, tmp_path, tmp_path / "log.txt", {"PROBE": "no"})


@pytest.mark.parametrize("argv, message", [
    (["--only", "train_loop,nope"], "unknown section nope"),
    (["--thread-papers", "gamma"], "unknown paper gamma"),
    (["--papers", "gamma"], "unknown paper gamma"),
    (["--scales", "huge"], "unknown scale huge"),
    (["--repeats", "0"], "at least 1"),
])
def test_bad_options_are_refused_with_the_choices(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.parse_options(argv, papers=PAPERS)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_medians_and_numbers():
    assert median_or_none([3.0, 1.0, 2.0]) == 2.0 and median_or_none([1.0, 2.0]) == 1.5
    assert median_or_none([]) is None
    assert [fmt(x) for x in (None, float("nan"), 1234.5, 12.345, 0.012345)] == ["–", "–", "1234", "12.35", "0.0123"]


def test_a_comparison_line_has_medians_a_ratio_and_the_goal():
    line = Line("toolkit vs bare", {"toolkit": {"quiet": [3.0, 1.2, 1.3]}, "bare": {"quiet": [1.0, 1.1, 0.9]}},
                compare=True, goal=1.15, note="n")
    assert line.median("toolkit", "quiet") == 1.3 and line.ratio("quiet") == pytest.approx(1.3)
    assert line.cell("quiet") == "1.30 vs 1.00" and line.full_note() == "goal <= 1.15: NOT met; n"
    assert line.ratio("busy") is None and line.cell("busy") == "– vs –"
    assert line.row(busy=False) == ["toolkit vs bare", "1.30 vs 1.00", "1.30", "goal <= 1.15: NOT met; n"]
    assert line.as_json()["median"]["bare"] == {"quiet": 1.0, "busy": None}


def test_a_single_sided_line_has_no_ratio_and_dashes_for_missing_values():
    line = Line("run: wall / cpu", {"wall": {"quiet": [5.0]}, "cpu": {}})
    assert line.ratio("quiet") is None and line.cell("quiet") == "5.00 / –"
    assert line.row(busy=True) == ["run: wall / cpu", "5.00 / –", "– / –", "", "", ""]
    assert Line("skipped", note="why").cell("quiet") == "–"


def test_the_table_aligns_its_columns_and_adds_busy_columns_when_asked():
    lines = [Line("short", {"a": {"quiet": [1.0], "busy": [2.0]}, "b": {"quiet": [0.5], "busy": [1.0]}}, compare=True),
             Line("a much longer description", {"x": {"quiet": [123.0]}}, note="note")]
    quiet = format_table(lines, busy=False).splitlines()
    assert quiet[0].split() == ["what", "quiet", "ratio", "note"] and set(quiet[1]) == {"-", " "}
    assert quiet[2].index("1.00 vs 0.5") == quiet[3].index("123") == quiet[0].index("quiet")
    busy = format_table(lines, busy=True).splitlines()
    assert busy[0].split() == ["what", "quiet", "busy", "ratio", "busy", "ratio", "note"]
    assert busy[2].index("2.00 vs 1.00") == busy[0].index("busy")


def notebook(*cells):
    return {"cells": [{"cell_type": kind, "source": source, "metadata": {"papermill": {"duration": duration}}}
                      for kind, source, duration in cells]}


def test_cell_times_are_the_code_cells_slowest_first():
    nb = notebook(("markdown", "# Title", 0.5), ("code", ["\n", "x = 1\n", "y = 2"], 0.25),
                  ("code", "train()", 4.0), ("code", "never_ran()", None))
    assert cell_times(nb) == [{"cell": 2, "seconds": 4.0, "source": "train()"},
                              {"cell": 1, "seconds": 0.25, "source": "x = 1"}]
    assert cell_times({"cells": [{"cell_type": "code", "source": "", "metadata": {}}]}) == []


def test_cell_medians_over_runs_and_the_top_cells_note():
    runs = [[{"cell": 2, "seconds": 4.0, "source": "t"}, {"cell": 1, "seconds": 1.0, "source": "s"}],
            [{"cell": 2, "seconds": 2.0, "source": "t"}, {"cell": 1, "seconds": 5.0, "source": "s"}],
            [{"cell": 2, "seconds": 3.0, "source": "t"}, {"cell": 1, "seconds": 4.0, "source": "s"}]]
    cells = median_cells(runs)
    assert [(c["cell"], c["seconds"]) for c in cells] == [(1, 4.0), (2, 3.0)]
    assert top_cells_note(cells, 1) == "slowest cells #1 4.00 s" and top_cells_note([]) == "no cell times"


def test_collect_interleaves_sides_and_spins_a_core_only_while_busy():
    before = set(multiprocessing.active_children())  # other tests' pools may still be alive

    def side(name):
        return lambda: {"v": name, "spinners": len(set(multiprocessing.active_children()) - before)}

    records = collect({"a": side("a"), "b": side("b")}, repeats=2, busy=True, label="test")
    assert [(r["side"], r["condition"], r["repeat"]) for r in records] == [
        ("a", "quiet", 0), ("b", "quiet", 0), ("a", "quiet", 1), ("b", "quiet", 1),
        ("a", "busy", 0), ("b", "busy", 0), ("a", "busy", 1), ("b", "busy", 1)]
    assert [r["spinners"] for r in records] == [0] * 4 + [1] * 4
    assert set(multiprocessing.active_children()) <= before
    assert pick(records, "b", "spinners") == {"quiet": [0, 0], "busy": [1, 1]}


def test_a_failing_command_is_reported_with_its_output(tmp_path):
    stats = run_measured([sys.executable, "-c", "pass"], tmp_path, tmp_path / "ok.log")
    assert set(stats) == {"wall", "cpu", "rss"}
    with pytest.raises(RuntimeError, match=r"exited with 3:\nboom"):
        run_measured([sys.executable, "-c", "print('boom'); raise SystemExit(3)"], tmp_path, tmp_path / "bad.log")


def test_a_stored_result_gives_its_wall_time_and_cells_without_cpu_or_rss(tmp_path):
    (tmp_path / "alpha").mkdir()
    (tmp_path / "alpha" / "run.json").write_text(json.dumps({"wall_time_s": 42.0, "scale": "cpu"}))
    (tmp_path / "alpha" / "notebook.ipynb").write_text(json.dumps(notebook(("code", "go()", 40.0))))
    line, record = bench.paper_from_results("alpha", tmp_path)
    assert line.cell("quiet") == "42.00 / – / –" and "scale cpu" in line.note and "#0 40.00 s" in line.note
    assert record["wall"] == 42.0 and record["cells"][0]["source"] == "go()"
    missing, none = bench.paper_from_results("beta", tmp_path)
    assert none is None and missing.note.startswith("skipped: no readable result")


def test_a_section_file_holds_lines_medians_runs_and_the_machine(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "BENCH_DIR", tmp_path)
    line = Line("x vs y", {"x": {"quiet": [2.0]}, "y": {"quiet": [1.0]}}, compare=True)
    opts = bench.parse_options(["--quick"], papers=PAPERS)
    path = bench.write_section("demo", Section([line], [{"side": "x"}], {"n": 1}), opts, bench.machine_info())
    data = json.loads(path.read_text())
    assert path == tmp_path / "demo.json" and data["lines"][0]["ratio"]["quiet"] == 2.0
    assert data["machine"]["cpu_count"] and "PAPERSUITE_THREADS" in data["machine"] and data["settings"] == {"n": 1}


@pytest.mark.parametrize("n, dim, classes", [(200, 20, 5), (300, 3, 10)])
def test_the_nc1_reference_agrees_with_the_toolkit(n, dim, classes):
    H, y = class_features(n, dim, classes, seed=1)
    assert nc1_reference(H, y, classes) == pytest.approx(nc1(H, y, classes), rel=1e-6, abs=1e-6)


def test_the_cka_reference_agrees_with_the_toolkit():
    layers = layer_stack(4, 60, 12, seed=2)
    reference = cka_reference(layers)
    np.testing.assert_allclose(reference, cka_matrix(layers).numpy(), rtol=1e-6, atol=1e-6)
    assert np.allclose(np.diag(reference), 1.0) and reference[0, 3] < reference[0, 1] < 1.0


def test_the_bare_training_loop_does_the_toolkit_loops_work():
    sizes = bench.Sizes(train_n=64, train_dim=6, widths=(8,), epochs=4, batch_size=16, classes=3)
    data = synthetic_data(sizes.train_n, sizes.train_dim, sizes.classes)
    settings = bench.train_settings(sizes)
    toolkit, bare = bench.fresh_mlp(sizes), bench.fresh_mlp(sizes)
    assert isinstance(toolkit, MLP)
    bench.toolkit_train(toolkit, data, settings)
    bare_train(bare, data, settings)
    for (name, a), (_, b) in zip(toolkit.state_dict().items(), bare.state_dict().items()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name
    assert not torch.equal(toolkit.fc.weight, bench.fresh_mlp(sizes).fc.weight)


def test_the_bare_hidden_state_loop_runs_the_tokens_the_toolkit_keeps():
    from shared.toolkit.hf_hidden import template_sentences, token_hidden_states
    from shared.toolkit.llm import random_llama, toy_tokenizer

    tokenizer = toy_tokenizer()
    model = random_llama(len(tokenizer), n_layers=1, hidden_size=16)
    texts = template_sentences(5)
    kept = token_hidden_states(model, tokenizer, texts, batch_size=2, drop_special_tokens=False)
    assert bare_hidden_states(model, tokenizer, texts, batch_size=2) == kept.shape[1]
