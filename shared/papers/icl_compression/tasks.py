"""The ten symbolic in-context-learning tasks of Hendel et al. (2023), generated in code.

A prompt is K demonstrations ``"{x}->{y}\\n"`` followed by the query ``"{x}->"`` (the format is
a parameter). Letters are a-z; lists hold 2-5 letters drawn with replacement, joined by ",".
"""
from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Callable

import numpy as np

from shared.errors import ParameterError

LETTERS = string.ascii_lowercase
DEFAULT_FORMAT = "{x}->{y}\n"
LIST_LENGTHS = (2, 3, 4, 5)


@dataclass(frozen=True)
class Task:
    """A symbolic task: how to draw an input, and its answer."""

    name: str
    sample_input: Callable[[np.random.Generator], str]
    answer: Callable[[str], str]


@dataclass(frozen=True)
class Prompt:
    """One ICL prompt: its text, the expected answer string, the task name and the query input."""

    text: str
    answer: str
    task: str
    query: str


def _letter_from(pool: str) -> Callable[[np.random.Generator], str]:
    return lambda rng: pool[rng.integers(len(pool))]


def _letter_list(rng: np.random.Generator) -> str:
    n = LIST_LENGTHS[rng.integers(len(LIST_LENGTHS))]
    return ",".join(LETTERS[i] for i in rng.integers(len(LETTERS), size=n))


def _shift(offset: int) -> Callable[[str], str]:
    return lambda x: LETTERS[LETTERS.index(x) + offset]


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("copy", _letter_from(LETTERS), lambda x: x),
    Task("next_letter", _letter_from(LETTERS[:-1]), _shift(1)),          # no alphabet wrap
    Task("to_upper", _letter_from(LETTERS), str.upper),
    Task("prev_letter", _letter_from(LETTERS[1:]), _shift(-1)),
    Task("next2_letter", _letter_from(LETTERS[:-2]), _shift(2)),
    Task("list_first", _letter_list, lambda x: x.split(",")[0]),
    Task("list_last", _letter_list, lambda x: x.split(",")[-1]),
    Task("list_length", _letter_list, lambda x: str(len(x.split(",")))),
    Task("list_first_upper", _letter_list, lambda x: x.split(",")[0].upper()),
    Task("list_last_upper", _letter_list, lambda x: x.split(",")[-1].upper()),
)}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ParameterError("tasks", f"unknown task {name!r}", TASKS)
    return TASKS[name]


def check_format(fmt: str) -> str:
    """A prompt format must hold ``{x}`` then ``{y}``."""
    if fmt.count("{x}") != 1 or fmt.count("{y}") != 1 or fmt.index("{x}") > fmt.index("{y}"):
        raise ParameterError("prompt_format", f"{fmt!r} must contain '{{x}}' then '{{y}}' once each")
    return fmt


def build_prompt(demos: list[tuple[str, str]], query: str, fmt: str = DEFAULT_FORMAT) -> str:
    """K formatted demonstrations, then the query formatted up to (not including) ``{y}``."""
    head = check_format(fmt).split("{y}")[0]
    return "".join(fmt.format(x=x, y=y) for x, y in demos) + head.format(x=query)


def n_noisy(ratio: float, k: int) -> int:
    """How many of ``k`` demonstrations a noise ratio corrupts: round(ratio * k)."""
    if not 0.0 <= ratio <= 1.0:
        raise ParameterError("noise_ratios", f"{ratio} is not in [0, 1]")
    return int(round(ratio * k))


def add_noise(demos: list[tuple[str, str]], ratio: float, rng: np.random.Generator) -> list[tuple[str, str]]:
    """Replace the outputs of exactly round(ratio * K) demonstrations by a different random letter."""
    noisy = list(demos)
    for i in rng.choice(len(demos), size=n_noisy(ratio, len(demos)), replace=False):
        x, y = demos[i]
        wrong = [c for c in LETTERS if c != y]
        noisy[i] = (x, wrong[rng.integers(len(wrong))])
    return noisy


def make_prompts(task: str, n: int, k: int, rng: np.random.Generator, fmt: str = DEFAULT_FORMAT,
                 noise_ratio: float = 0.0, fixed_query: str | None = None) -> list[Prompt]:
    """``n`` prompts of ``task`` with ``k`` demonstrations each (query fixed or drawn per prompt)."""
    spec = get_task(task)
    prompts = []
    for _ in range(n):
        demos = [(x, spec.answer(x)) for x in (spec.sample_input(rng) for _ in range(k))]
        demos = add_noise(demos, noise_ratio, rng) if noise_ratio else demos
        query = fixed_query if fixed_query is not None else spec.sample_input(rng)
        prompts.append(Prompt(build_prompt(demos, query, fmt), spec.answer(query), task, query))
    return prompts


def answer_token_id(tokenizer, prompt: str, answer: str) -> int:
    """First token of tokenize(prompt + answer) after tokenize(prompt).

    Taking the answer in context handles tokenizers that spell a word differently at the start
    of a string, and multi-token answers (their first token). A tokenizer that merges the end of
    the prompt with the answer has no such token: that raises.
    """
    head = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    full = tokenizer(prompt + answer, add_special_tokens=False)["input_ids"]
    if full[:len(head)] != head or len(full) == len(head):
        raise ValueError(f"the answer {answer!r} merges with the end of the prompt {prompt[-10:]!r}: "
                         "choose a prompt_format that ends at a token boundary")
    return full[len(head)]
