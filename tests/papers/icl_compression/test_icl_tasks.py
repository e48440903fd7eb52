"""The symbolic tasks, prompt building, noisy demonstrations and answer-token extraction."""
import numpy as np
import pytest

from shared.errors import ParameterError
from shared.papers.icl_compression.tasks import (LETTERS, TASKS, add_noise, answer_token_id, build_prompt, make_prompts, n_noisy)
from shared.toolkit.llm import toy_tokenizer


@pytest.mark.parametrize("task, x, y", [
    ("copy", "a", "a"), ("next_letter", "a", "b"), ("to_upper", "a", "A"), ("prev_letter", "b", "a"),
    ("next2_letter", "a", "c"), ("list_first", "a,b,c", "a"), ("list_last", "a,b,c", "c"),
    ("list_length", "a,b,c", "3"), ("list_first_upper", "a,b,c", "A"), ("list_last_upper", "a,b,c", "C"),
])
def test_task_answers(task, x, y):
    assert TASKS[task].answer(x) == y


def test_inputs_stay_in_range():
    rng = np.random.default_rng(0)
    for _ in range(300):
        assert TASKS["next_letter"].sample_input(rng) != "z"
        assert TASKS["prev_letter"].sample_input(rng) != "a"
        assert TASKS["next2_letter"].sample_input(rng) not in "yz"
        items = TASKS["list_first"].sample_input(rng).split(",")
        assert 2 <= len(items) <= 5 and all(c in LETTERS for c in items)


def test_prompt_format_and_determinism():
    assert build_prompt([("a", "b"), ("c", "d")], "e") == "a->b\nc->d\ne->"
    assert build_prompt([("a", "b")], "e", "example:{x}->{y}\n") == "example:a->b\nexample:e->"
    first = make_prompts("to_upper", 3, 4, np.random.default_rng(5))
    assert first == make_prompts("to_upper", 3, 4, np.random.default_rng(5))
    assert all(p.text.count("\n") == 4 and p.answer == p.query.upper() for p in first)
    fixed = make_prompts("copy", 3, 2, np.random.default_rng(0), fixed_query="m")
    assert all(p.text.endswith("m->") and p.answer == "m" for p in fixed)
    with pytest.raises(ParameterError):
        build_prompt([], "a", "{y}<-{x}")


@pytest.mark.parametrize("ratio", [0.0, 0.2, 0.4, 0.5, 1.0])
@pytest.mark.parametrize("k", [1, 5, 10])
def test_noise_replaces_exactly_round_rk_outputs(ratio, k):
    rng = np.random.default_rng(k)
    demos = [(x, x.upper()) for x in (LETTERS[i] for i in rng.integers(26, size=k))]
    noisy = add_noise(demos, ratio, rng)
    assert [x for x, _ in noisy] == [x for x, _ in demos]
    assert sum(a != b for (_, a), (_, b) in zip(demos, noisy)) == n_noisy(ratio, k) == round(ratio * k)


def test_answer_token_in_context():
    tok = toy_tokenizer()
    in_context = tok.convert_tokens_to_ids("b")
    assert tok("b", add_special_tokens=False)["input_ids"] == [tok.convert_tokens_to_ids("▁b")]
    assert answer_token_id(tok, "a->b\nc->", "b") == in_context          # not the string-start "▁b"
    assert answer_token_id(tok, "a,b->2\nc,d->", "10") == tok.convert_tokens_to_ids("1")


def test_answer_merged_with_prompt_raises():
    with pytest.raises(ValueError, match="merges"):
        answer_token_id(toy_tokenizer(), "a-", ">b")                       # "-" + ">" merge into "->"
