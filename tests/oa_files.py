"""Deterministic files in Open-Assistant's tree export format, for tests and benchmarks.

A tree file (`*.trees.jsonl`, usually gzipped) holds one JSON object per line: a tree with
`message_tree_id`, `tree_state`, `prompt` (the root message, whose `replies` nest the rest) and
`origin`. `generate_trees` yields such trees as dicts, with keys in the order the published files
use and with the omissions of one `Variant` of the format:

- `Variant.OASST2`: oasst-data's writer (oasst2). Every key is written, nulls are explicit,
  including the node-level `"message_tree_id": null` and `"tree_state": null`, and the tree's
  `"origin"`.
- `Variant.BACKEND`: the backend exporter (`exclude_none=True`). Keys whose value is None are left
  out; empty lists and dicts are kept (`"replies": []` on leaves, `"emojis": {}`).
- `Variant.OASST1`: like `BACKEND` but without `events` and the tree's `origin` (oasst1 has
  `user_id`, `created_date` and `detoxify`).
- `Variant.EARLY`: the early-2023 backend exports, which lack `user_id`, `created_date`, `events`,
  `detoxify` and `origin` altogether; None values left out.

The content is realistic rather than random noise: UUID4 ids, the root is a `prompter` message and
roles alternate with depth, siblings are sorted by rank (unranked ones last, then by date), a mix
of tree states in which root-only states have no replies, several languages with non-ASCII text,
users who recur across trees, dates that increase from a message to its replies.

Everything comes from one `random.Random(seed)`: the same arguments give the same trees and
`write_file` the same bytes (the gzip header carries no name and no time). Tree `i` does not
depend on `n_trees`, so a smaller file is a prefix of a larger one with the same other arguments,
and, without `with_events`, two variants with the same seed hold the same trees and differ only
in the keys they write.

`python -m tests.oa_files OUT.jsonl.gz --trees 70000 --variant oasst2 --seed 1` writes a file.
"""

# The text banks hold Cyrillic and CJK punctuation, which RUF001 reports as look-alikes.
# ruff: noqa: RUF001

from __future__ import annotations

import argparse
import gzip as _gzip
import io
import json
import math
import os
import random
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from db.seed.plan import OASST2_STATE_COUNTS
from domain.states import State

Tree = dict[str, Any]
"""A tree object as written on one line of a tree file."""
Message = dict[str, Any]
"""A message node of a tree (`prompt` or an element of some `replies`)."""


class Variant(StrEnum):
    """Which exporter's flavour of the format to write (see the module docstring)."""

    OASST2 = "oasst2"
    BACKEND = "backend"
    OASST1 = "oasst1"
    EARLY = "early"


NODE_KEYS: tuple[str, ...] = (
    "message_id",
    "parent_id",
    "user_id",
    "created_date",
    "text",
    "role",
    "lang",
    "review_count",
    "review_result",
    "deleted",
    "rank",
    "synthetic",
    "model_name",
    "emojis",
    "replies",
    "labels",
    "events",
    "detoxify",
    "message_tree_id",
    "tree_state",
)
"""Every key a message node can have, in the order pydantic writes them (newest schema)."""
TREE_KEYS: tuple[str, ...] = ("message_tree_id", "tree_state", "prompt", "origin")
"""Every key of a tree object, in the published order."""

_VARIANT_MISSING: dict[Variant, frozenset[str]] = {
    Variant.OASST2: frozenset(),
    Variant.BACKEND: frozenset(),
    Variant.OASST1: frozenset({"events"}),
    Variant.EARLY: frozenset({"user_id", "created_date", "events", "detoxify"}),
}
_VARIANT_KEEPS_NULLS: dict[Variant, bool] = {
    Variant.OASST2: True,
    Variant.BACKEND: False,
    Variant.OASST1: False,
    Variant.EARLY: False,
}
_VARIANT_HAS_ORIGIN: dict[Variant, bool] = {
    Variant.OASST2: True,
    Variant.BACKEND: True,
    Variant.OASST1: False,
    Variant.EARLY: False,
}


def node_keys(variant: Variant) -> tuple[str, ...]:
    """The keys a message node of `variant` may have, in order (all of them when nulls are kept)."""
    missing = _VARIANT_MISSING[Variant(variant)]
    return tuple(key for key in NODE_KEYS if key not in missing)


def tree_keys(variant: Variant) -> tuple[str, ...]:
    """The keys a tree object of `variant` may have, in order."""
    if _VARIANT_HAS_ORIGIN[Variant(variant)]:
        return TREE_KEYS
    return TREE_KEYS[:3]


def keeps_nulls(variant: Variant) -> bool:
    """Whether `variant` writes None values as explicit `null` (else it leaves the key out)."""
    return _VARIANT_KEEPS_NULLS[Variant(variant)]


# --------------------------------------------------------------------------------------------
# States and tree shapes

ROOT_ONLY_STATES: frozenset[State] = frozenset(
    {State.INITIAL_PROMPT_REVIEW, State.PROMPT_LOTTERY_WAITING}
)
"""States of a tree that has not won the prompt lottery: only the root prompt exists."""
RANKED_STATES: frozenset[State] = frozenset({State.READY_FOR_EXPORT})
"""States whose trees carry ranks (scoring has run). Elsewhere every `rank` is null."""
_GROWN_STATES: frozenset[State] = frozenset(
    {
        State.RANKING,
        State.READY_FOR_SCORING,
        State.READY_FOR_EXPORT,
        State.SCORING_FAILED,
        State.BACKLOG_RANKING,
    }
)
"""States whose trees have at least one reply and no message still under review."""

DEFAULT_STATE_WEIGHTS: Mapping[State, float] = {
    State.READY_FOR_EXPORT: 45.0,
    State.PROMPT_LOTTERY_WAITING: 25.0,
    State.GROWING: 8.0,
    State.INITIAL_PROMPT_REVIEW: 6.0,
    State.HALTED_BY_MODERATOR: 5.0,
    State.ABORTED_LOW_GRADE: 5.0,
    State.BACKLOG_RANKING: 3.0,
    State.RANKING: 2.0,
    State.READY_FOR_SCORING: 0.5,
    State.SCORING_FAILED: 0.5,
}
"""The default mix: mostly `ready_for_export`, every state present."""
OASST2_STATE_WEIGHTS: Mapping[State, float] = dict(OASST2_STATE_COUNTS)
"""The trees of the published oasst2 (2023-11-05) by state: mostly root-only trees."""
STATE_MIXES: Mapping[str, Mapping[State, float]] = {
    "default": DEFAULT_STATE_WEIGHTS,
    "oasst2": OASST2_STATE_WEIGHTS,
}

LANG_WEIGHTS: Mapping[str, float] = {
    "en": 44.0,
    "es": 20.0,
    "ru": 8.0,
    "zh": 6.0,
    "de": 5.0,
    "fr": 5.0,
    "pt-BR": 5.0,
    "ja": 2.5,
    "it": 2.5,
}
"""Languages of the trees (a tree's messages share the root's language, but for a few)."""

EMOJI_WEIGHTS: Mapping[str, float] = {
    "+1": 6.0,
    "_skip_reply": 3.0,
    "-1": 2.0,
    "_skip_labeling": 2.0,
    "_skip_ranking": 1.0,
    "red_flag": 0.5,
}
_FLAG_LABELS = ("spam", "lang_mismatch", "pii", "not_appropriate", "hate_speech", "sexual_content")
_SCALE_LABELS = ("quality", "toxicity", "humor", "creativity", "violence")
_ASSISTANT_LABELS = ("fails_task", "helpfulness")
_DETOXIFY_KEYS = (
    "toxicity",
    "severe_toxicity",
    "obscene",
    "identity_attack",
    "insult",
    "threat",
    "sexual_explicit",
)
MODEL_NAMES: tuple[str, ...] = (
    "oasst-sft-1-pythia-12b",
    "OpenAssistant/oasst-sft-6-llama-30b",
    "OpenAssistant/oasst-rlhf-2-llama-30b-7k-steps",
    "gpt-3.5-turbo",
)
ORIGINS: tuple[str, ...] = ("oasst2-import-test", "oasst_export_2023-04-12.jsonl", "hf-import")

_BASE_DATE = datetime(2023, 1, 1, tzinfo=UTC)
_DATE_SPAN_US = 308 * 86_400 * 1_000_000
"""Roots are created between 2023-01-01 and 2023-11-05 (plus the replies' delays)."""
_REPLY_DELAY_MEAN_US = 5 * 3_600 * 1_000_000
_REPLY_DELAY_MIN_US = 20 * 1_000_000


# --------------------------------------------------------------------------------------------
# Texts


class _Bank(NamedTuple):
    prompts: tuple[str, ...]
    """Root prompts; `{n}` is replaced by a number."""
    followups: tuple[str, ...]
    """Prompter replies deeper in the tree."""
    sentences: tuple[str, ...]
    """Sentences assistant replies are made of."""
    openers: tuple[str, ...]
    """First lines of some assistant replies."""


_BANKS: dict[str, _Bank] = {
    "en": _Bank(
        prompts=(
            "Write a haiku about autumn.",
            "How do I convert {n} degrees Celsius to Fahrenheit?",
            "What is the difference between a list and a tuple in Python?",
            "Can you explain how vaccines work, in simple terms?",
            'What does the phrase "break a leg" mean?',
            "Give me {n} ideas for a birthday party for a 7-year-old.",
            "Why is the sky blue?",
            "Write a short story about a robot who learns to paint.",
            "Summarize the plot of Hamlet in {n} sentences.",
            "How can I improve my sleep?",
            "What's the best way to learn a new language as an adult?",
            "Explain recursion to me like I'm five.",
        ),
        followups=(
            "Can you make it a bit shorter?",
            "Thanks! Could you give me an example?",
            "That's not quite right. Try again, please.",
            'What about the "edge cases" you mentioned?',
            "Could you explain the second point in more detail?",
            "Great, now translate it into French.",
            "Why {n}?",
            "Interesting. Where can I read more about this?",
        ),
        sentences=(
            "Here is a short overview of the main points.",
            "The answer depends on a few factors.",
            "First, make sure you understand the basic idea.",
            "In most cases, the simplest solution is also the best one.",
            'People often say "practice makes perfect", and it is true here as well.',
            "Keep in mind that this is only an approximation.",
            "You can multiply by 9/5 and then add 32.",
            "A tuple is immutable, while a list can be changed after it is created.",
            "Try to go to bed at the same time every day.",
            "If you have any more questions, feel free to ask!",
            "This works because each step reduces the problem to a smaller one.",
            "Let me know if you would like a more detailed explanation.",
            "On Windows the file usually lives in C:\\Users\\you\\AppData.",
            "It's a common misconception; the real reason is Rayleigh scattering.",
        ),
        openers=("Sure!", "Certainly, here you go:", "Great question.", "Of course."),
    ),
    "es": _Bank(
        prompts=(
            "¿Cuál es la capital de Australia?",
            "Escribe un poema corto sobre el mar.",
            "¿Cómo puedo aprender a programar desde cero?",
            "Explícame qué es la fotosíntesis.",
            "Dame {n} consejos para ahorrar dinero.",
            "¿Qué significa la expresión «estar en las nubes»?",
            "¿Por qué los gatos ronronean?",
        ),
        followups=(
            "¿Puedes darme un ejemplo?",
            "Gracias, ¿y qué pasa en invierno?",
            "No entendí la última parte, ¿me la explicas?",
            "¿Podrías resumirlo en {n} frases?",
        ),
        sentences=(
            "La capital de Australia es Canberra, no Sídney.",
            "La fotosíntesis es el proceso por el cual las plantas producen azúcar.",
            "Te recomiendo empezar con un lenguaje sencillo como Python.",
            "Es importante practicar todos los días, aunque sea poco tiempo.",
            "Según los expertos, no hay una única respuesta correcta.",
            "Además, conviene revisar tus gastos cada mes.",
            "¡Espero que te sea útil!",
            "Los gatos ronronean cuando están tranquilos, pero también cuando sienten dolor.",
        ),
        openers=("¡Claro!", "Por supuesto.", "Buena pregunta."),
    ),
    "de": _Bank(
        prompts=(
            "Was ist der Unterschied zwischen „dass“ und „das“?",
            "Schreib mir ein Gedicht über den Frühling.",
            "Wie funktioniert eine Wärmepumpe?",
            "Nenne mir {n} Sehenswürdigkeiten in München.",
            "Warum ist Bier in Deutschland so beliebt?",
        ),
        followups=(
            "Kannst du das genauer erklären?",
            "Danke! Gibt es dafür ein Beispiel?",
            "Und wie viel kostet das ungefähr?",
        ),
        sentences=(
            "„Dass“ ist eine Konjunktion, „das“ ist ein Artikel oder Pronomen.",
            "Eine Wärmepumpe entzieht der Umgebung Wärme und gibt sie im Haus ab.",
            "Der Englische Garten ist größer als der Central Park in New York.",
            "Das hängt stark von den örtlichen Gegebenheiten ab.",
            "Ich hoffe, das hilft dir weiter.",
            "Über die Jahre hat sich daran nicht viel geändert.",
        ),
        openers=("Gerne!", "Natürlich.", "Gute Frage."),
    ),
    "fr": _Bank(
        prompts=(
            "Quelle est la différence entre « a » et « à » ?",
            "Écris une courte histoire sur un chat qui voyage.",
            "Comment préparer une crème brûlée ?",
            "Donne-moi {n} idées de cadeaux pour Noël.",
            "Pourquoi la tour Eiffel a-t-elle été construite ?",
        ),
        followups=(
            "Peux-tu être plus précis ?",
            "Merci ! Et pour quatre personnes ?",
            "Je n'ai pas compris, peux-tu reformuler ?",
        ),
        sentences=(
            "« a » est une forme du verbe avoir, tandis que « à » est une préposition.",
            "Il faut d'abord chauffer la crème avec la vanille.",
            "La tour Eiffel a été construite pour l'Exposition universelle de 1889.",
            "C'est une question qui revient souvent.",
            "N'hésite pas à me demander si tu veux plus de détails.",
            "Voilà, j'espère que ça t'aidera !",
        ),
        openers=("Bien sûr !", "Avec plaisir.", "Très bonne question."),
    ),
    "pt-BR": _Bank(
        prompts=(
            'Qual é a diferença entre "mas" e "mais"?',
            "Como faço um bolo de cenoura?",
            "Me dê {n} dicas para estudar melhor.",
            "O que é inteligência artificial?",
            "Por que o céu fica alaranjado no pôr do sol?",
        ),
        followups=(
            "Pode dar um exemplo?",
            "Obrigado! E se eu não tiver açúcar?",
            "Não entendi, pode explicar de novo?",
        ),
        sentences=(
            '"Mas" indica oposição, enquanto "mais" indica quantidade.',
            "Bata as cenouras com os ovos e o óleo no liquidificador.",
            "Inteligência artificial é a área da computação que busca imitar o raciocínio.",
            "Organize seus horários e faça pausas regulares.",
            "Espero ter ajudado!",
            "Isso acontece porque a luz atravessa uma camada maior da atmosfera.",
        ),
        openers=("Claro!", "Com certeza.", "Ótima pergunta."),
    ),
    "ru": _Bank(
        prompts=(
            "Почему небо голубое?",
            "Напиши короткое стихотворение о зиме.",
            "Как выучить английский язык за {n} месяцев?",
            "Что такое квантовый компьютер?",
            "Посоветуй хорошую книгу для отпуска.",
        ),
        followups=(
            "Можешь объяснить проще?",
            "Спасибо! А есть ещё примеры?",
            "А что ты думаешь про «Мастера и Маргариту»?",
        ),
        sentences=(
            "Небо кажется голубым из-за рассеяния света в атмосфере.",
            "Главное — заниматься регулярно, хотя бы по полчаса в день.",
            "Квантовый компьютер использует кубиты вместо обычных битов.",
            "Я бы посоветовал «Мастера и Маргариту» Булгакова.",
            "Надеюсь, это поможет!",
            "Это довольно сложный вопрос, и на него нет однозначного ответа.",
        ),
        openers=("Конечно!", "Хороший вопрос.", "С удовольствием."),
    ),
    "zh": _Bank(
        prompts=(
            "天空为什么是蓝色的？",
            "请写一首关于秋天的短诗。",
            "如何在{n}天内学会做饭？",
            "什么是机器学习？",
            "推荐几本适合初学者的编程书。",
        ),
        followups=(
            "可以举个例子吗？",
            "谢谢！能再简单一点吗？",
            "你说的“第二点”是什么意思？",
        ),
        sentences=(
            "天空呈蓝色是因为大气对阳光的瑞利散射。",
            "机器学习是人工智能的一个分支。",
            "建议你从简单的家常菜开始练习。",
            "《Python编程：从入门到实践》是一本不错的入门书。",
            "希望这些信息对你有帮助！",
            "这个问题没有唯一的答案，取决于具体情况。",
        ),
        openers=("当然可以！", "好问题。", "没问题："),
    ),
    "ja": _Bank(
        prompts=(
            "空はなぜ青いのですか？",
            "秋についての俳句を書いてください。",
            "{n}日で日本語を上達させる方法は？",
            "おすすめの本を教えてください。",
        ),
        followups=("例を挙げてもらえますか？", "ありがとう！もう少し短くできますか？"),
        sentences=(
            "空が青く見えるのは、光が大気中で散乱されるためです。",
            "毎日少しずつ練習することが大切です。",
            "村上春樹の『ノルウェイの森』をおすすめします。",
            "お役に立てれば幸いです。",
        ),
        openers=("もちろんです！", "良い質問ですね。"),
    ),
    "it": _Bank(
        prompts=(
            "Perché il cielo è blu?",
            "Scrivi una breve poesia sul mare.",
            "Come si prepara il tiramisù?",
            "Dammi {n} consigli per viaggiare low cost.",
        ),
        followups=("Puoi fare un esempio?", "Grazie! E senza uova?"),
        sentences=(
            "Il cielo è blu a causa della diffusione della luce nell'atmosfera.",
            "Per il tiramisù servono savoiardi, mascarpone, uova e caffè.",
            "Prenota con largo anticipo e viaggia fuori stagione.",
            "Spero di esserti stato d'aiuto!",
        ),
        openers=("Certo!", "Ottima domanda."),
    ),
}

_EMOJI_TAILS: tuple[str, ...] = (" 🙂", " 😂😂", " 👍", " 👩‍💻", " ❤️", " 🎉")
"""Emoji endings (astral code points, a ZWJ sequence, a variation selector)."""
_CODE_BLOCKS: tuple[str, ...] = (
    '```python\nprint("Hello, world!")\n```',
    "```python\ndef fahrenheit(c: float) -> float:\n    return c * 9 / 5 + 32\n```",
    '```bash\necho "path: C:\\\\temp" | tr "\\\\" "/"\n```',
    '```json\n{"name": "Ada", "tags": ["x", "y"]}\n```',
)


# --------------------------------------------------------------------------------------------
# Generation


class _Weighted:
    """Values and cumulative weights, for `rng.choices`."""

    __slots__ = ("cum", "values")

    def __init__(self, weights: Mapping[Any, float]) -> None:
        self.values: list[Any] = [value for value, weight in weights.items() if weight > 0]
        if not self.values:
            raise ValueError("no value has a positive weight")
        total = 0.0
        self.cum: list[float] = []
        for value in self.values:
            total += float(weights[value])
            self.cum.append(total)

    def draw(self, rng: random.Random) -> Any:
        return rng.choices(self.values, cum_weights=self.cum)[0]


class _Generator:
    """The state of one `generate_trees` call (the RNG, the user pool, derived constants)."""

    def __init__(
        self,
        *,
        seed: int,
        variant: Variant,
        avg_messages: float,
        state_weights: Mapping[State, float],
        n_users: int,
        max_depth: int,
        max_children: int,
        with_events: bool,
    ) -> None:
        if avg_messages < 1:
            raise ValueError(f"avg_messages must be at least 1, got {avg_messages}")
        if max_depth < 0 or max_children < 1 or n_users < 1:
            raise ValueError("max_depth must be >= 0, max_children and n_users >= 1")
        if with_events and "events" in _VARIANT_MISSING[variant]:
            raise ValueError(f"variant {variant.value} has no `events`")
        self.rng = random.Random(seed)
        self.variant = variant
        self.missing = _VARIANT_MISSING[variant]
        self.keep_nulls = _VARIANT_KEEPS_NULLS[variant]
        self.has_origin = _VARIANT_HAS_ORIGIN[variant]
        self.max_depth = max_depth
        self.max_children = max_children
        self.with_events = with_events
        self.users: list[str | None] = [None] * n_users
        self.states = _Weighted({State(s): w for s, w in state_weights.items()})
        self.langs = _Weighted(LANG_WEIGHTS)
        self.emojis = _Weighted(EMOJI_WEIGHTS)
        self.capacity: int = sum(max_children**d for d in range(max_depth + 1))
        # Root-only trees have one message; the others share one mean size, chosen so that the
        # mean over all trees is `avg_messages` (before the cap at `capacity`).
        total = sum(state_weights.values())
        p_root = sum(w for s, w in state_weights.items() if State(s) in ROOT_ONLY_STATES) / total
        self.grown_mean = 1.0 if p_root >= 1 else (avg_messages - p_root) / (1 - p_root)

    # -- small draws

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def user(self) -> str:
        """A user id from the pool; low indexes are much more frequent (a few prolific users)."""
        index = int(len(self.users) * self.rng.random() ** 2)
        user = self.users[index]
        if user is None:
            user = self.users[index] = self.uuid()
        return user

    def size(self, state: State) -> int:
        """The number of messages of a tree in `state`."""
        if state in ROOT_ONLY_STATES or self.capacity == 1:
            self.rng.random()  # keep one draw per tree whatever the state
            return 1
        minimum = 2 if state in _GROWN_STATES and self.grown_mean >= 2 else 1
        extra_mean = self.grown_mean - minimum
        u = self.rng.random()
        if extra_mean <= 0:
            return minimum
        # Geometric with mean `extra_mean`: P(k) = (1 - q) q^k.
        q = extra_mean / (extra_mean + 1)
        extra = int(math.log(1.0 - u) / math.log(q))
        return min(minimum + extra, self.capacity)

    def text(self, bank: _Bank, role: str, depth: int) -> str:
        rng = self.rng
        if role == "prompter":
            pool = bank.prompts if depth == 0 else bank.followups
            text = rng.choice(pool).replace("{n}", str(rng.randint(2, 99)))
            roll = rng.random()
            if roll < 0.15:
                text += "\n" + rng.choice(bank.sentences)
            elif roll < 0.2:
                text += rng.choice(_EMOJI_TAILS)
            return text
        paragraphs = []
        if rng.random() < 0.4:
            paragraphs.append(rng.choice(bank.openers))
        sentences = bank.sentences
        for _ in range(rng.randint(1, 3)):
            paragraphs.append(" ".join(rng.choices(sentences, k=rng.randint(1, 4))))
        roll = rng.random()
        if roll < 0.15:
            items = rng.choices(sentences, k=rng.randint(2, 4))
            paragraphs.append("\n".join(f"{i}. {item}" for i, item in enumerate(items, 1)))
        elif roll < 0.22:
            paragraphs.append(rng.choice(_CODE_BLOCKS))
        text = "\n\n".join(paragraphs)
        if rng.random() < 0.04:
            text += rng.choice(_EMOJI_TAILS)
        return text

    def emoji_counts(self, reviewed: bool, red_flags: bool) -> dict[str, int] | None:
        rng = self.rng
        roll = rng.random()
        emojis: dict[str, int] = {}
        if reviewed and roll < 0.55:
            for _ in range(rng.randint(1, 3)):
                name = self.emojis.draw(rng)
                emojis[name] = emojis.get(name, 0) + 1 + int(rng.random() ** 3 * 6)
        elif roll < 0.75:
            return None
        if red_flags:
            emojis["red_flag"] = rng.randint(3, 6)
        return emojis

    def labels(self, role: str, review_count: int) -> dict[str, dict[str, Any]] | None:
        """`{name: {value, count}}`, as the backend averages the reviewers' labels."""
        rng = self.rng
        if review_count < 1 or rng.random() < 0.4:
            return None
        names = ["spam", "lang_mismatch" if role == "prompter" else "fails_task"]
        names += [n for n in _FLAG_LABELS[2:] if rng.random() < 0.15]
        names += [n for n in _SCALE_LABELS if rng.random() < 0.5]
        if role == "assistant" and rng.random() < 0.6:
            names.append("helpfulness")
        labels: dict[str, dict[str, Any]] = {}
        for name in names:
            count = review_count if rng.random() < 0.8 else rng.randint(1, review_count)
            if name in _FLAG_LABELS or name == "fails_task":
                votes = sum(1 for _ in range(count) if rng.random() < 0.08)
                value = votes / count
            else:
                value = sum(rng.randint(0, 4) for _ in range(count)) / (4 * count)
            labels[name] = {"value": value, "count": count}
        return labels

    def detoxify(self) -> dict[str, float]:
        rng = self.rng
        return {key: rng.random() ** 6 * 0.05 for key in _DETOXIFY_KEYS}

    def events(self, emojis: dict[str, int] | None) -> dict[str, list[dict[str, Any]]] | None:
        """Emoji events matching `emojis` (a few of each), as the later exporter writes them."""
        if not emojis:
            return None
        return {
            "emoji": [
                {"type": "emoji", "user_id": self.user(), "emoji": name}
                for name, count in emojis.items()
                for _ in range(min(count, 3))
            ]
        }

    # -- one tree

    def tree(self) -> Tree:
        rng = self.rng
        state: State = self.states.draw(rng)
        size = self.size(state)
        lang: str = self.langs.draw(rng)
        origin = rng.choice(ORIGINS) if rng.random() < 0.05 else None

        # Shape: attach each new message under a random node that still has room.
        parent = [-1]
        depth = [0]
        children: list[list[int]] = [[]]
        open_nodes = [0] if self.max_depth > 0 else []
        for i in range(1, size):
            slot = int(rng.random() * len(open_nodes))
            p = open_nodes[slot]
            parent.append(p)
            depth.append(depth[p] + 1)
            children.append([])
            children[p].append(i)
            if len(children[p]) >= self.max_children:
                open_nodes[slot] = open_nodes[-1]
                open_nodes.pop()
            if depth[i] < self.max_depth:
                open_nodes.append(i)

        # Dates: the root somewhere in 2023, each reply some time after its parent.
        created = [rng.randrange(_DATE_SPAN_US)]
        for i in range(1, size):
            delay = _REPLY_DELAY_MIN_US + int(rng.expovariate(1.0) * _REPLY_DELAY_MEAN_US)
            created.append(created[parent[i]] + delay)

        # Reviews: inner messages were accepted; leaves may be rejected, deleted or in review.
        review_count: list[int] = []
        review_result: list[bool | None] = []
        deleted: list[bool] = []
        grown = state in _GROWN_STATES
        for i in range(size):
            roll = rng.random()
            count = rng.randint(3, 5)
            result: bool | None = True
            gone = False
            if i == 0 and size == 1:
                # A lone root: in review, rejected (aborted), or accepted (it won the lottery).
                if state == State.INITIAL_PROMPT_REVIEW or (
                    state == State.HALTED_BY_MODERATOR and roll < 0.3
                ):
                    count, result = rng.randint(0, 2), None
                elif state == State.ABORTED_LOW_GRADE:
                    result = False
            elif i > 0 and not children[i]:
                in_review = 0.0 if grown else 0.35
                if roll < in_review:
                    count, result = rng.randint(0, 2), None
                elif roll < in_review + 0.05:
                    result = False
                elif roll < in_review + 0.07:
                    gone = True
            review_count.append(count)
            review_result.append(result)
            deleted.append(gone)

        # Ranks: among the siblings that were accepted and not deleted, when there are two or more.
        rank: list[int | None] = [None] * size
        if state in RANKED_STATES:
            for group in children:
                rankable = [c for c in group if review_result[c] is True and not deleted[c]]
                if len(rankable) >= 2:
                    order = list(range(len(rankable)))
                    rng.shuffle(order)
                    for c, r in zip(rankable, order, strict=True):
                        rank[c] = r

        bank = _BANKS[lang]
        tree_id = self.uuid()
        ids = [tree_id] + [self.uuid() for _ in range(size - 1)]
        root_user = self.user()
        nodes: list[Message] = []
        for i in range(size):
            d = depth[i]
            role = "prompter" if d % 2 == 0 else "assistant"
            if i == 0:
                user = root_user
            elif role == "prompter" and rng.random() < 0.3:
                user = root_user  # the author of the prompt carries on the conversation
            else:
                user = self.user()
            msg_lang = lang
            if i > 0 and rng.random() < 0.02:
                msg_lang = self.langs.draw(rng)
            synthetic = role == "assistant" and rng.random() < 0.015
            model_name = rng.choice(MODEL_NAMES) if synthetic else None
            red_flags = i == 0 and state == State.ABORTED_LOW_GRADE
            emojis = self.emoji_counts(review_count[i] >= 3, red_flags)
            labels = self.labels(role, review_count[i])
            detoxify = self.detoxify() if rng.random() < 0.3 else None
            events = self.events(emojis) if self.with_events and rng.random() < 0.5 else None
            node: Message = {
                "message_id": ids[i],
                "parent_id": ids[parent[i]] if i else None,
                "user_id": user,
                "created_date": (_BASE_DATE + timedelta(microseconds=created[i])).isoformat(),
                "text": self.text(_BANKS[msg_lang] if msg_lang != lang else bank, role, d),
                "role": role,
                "lang": msg_lang,
                "review_count": review_count[i],
                "review_result": review_result[i],
                "deleted": deleted[i],
                "rank": rank[i],
                "synthetic": synthetic,
                "model_name": model_name,
                "emojis": emojis,
                "replies": [],
                "labels": labels,
                "events": events,
                "detoxify": detoxify,
                "message_tree_id": None,
                "tree_state": None,
            }
            for key in self.missing:
                del node[key]
            if not self.keep_nulls:
                node = {key: value for key, value in node.items() if value is not None}
            nodes.append(node)

        # Siblings by rank, unranked ones last, then by date (as Open-Assistant's exporter).
        for i, group in enumerate(children):
            if len(group) > 1:
                group.sort(key=lambda c: (rank[c] is None, rank[c] or 0, created[c]))
            nodes[i]["replies"].extend(nodes[c] for c in group)

        tree: Tree = {"message_tree_id": tree_id, "tree_state": state.value, "prompt": nodes[0]}
        if self.has_origin and (origin is not None or self.keep_nulls):
            tree["origin"] = origin
        return tree


def generate_trees(
    n_trees: int,
    seed: int = 0,
    variant: Variant | str = Variant.OASST2,
    avg_messages: float = 3.0,
    *,
    state_weights: Mapping[State, float] | str = "default",
    n_users: int = 10_000,
    max_depth: int = 5,
    max_children: int = 3,
    with_events: bool = False,
) -> Iterator[Tree]:
    """Yield `n_trees` trees of the export format, as the dicts a reader gets from `json.loads`.

    - `variant`: which keys are written and whether nulls are explicit (see `Variant`).
    - `avg_messages`: the mean number of messages per tree (root-only trees count 1; the other
      trees are larger to make up the mean). With 3.0, 70,000 trees hold about 210,000 messages.
    - `state_weights`: the mix of `tree_state`s, a mapping or a name in `STATE_MIXES`
      (`"default"`: mostly `ready_for_export`; `"oasst2"`: the published dataset's mix, 63 %
      `prompt_lottery_waiting`). Trees in `ROOT_ONLY_STATES` have only the root.
    - `n_users`: the size of the pool authors are drawn from (skewed: a few users write a lot).
    - `max_depth`: the deepest message's depth (the root is 0); `max_children`: replies per
      message at most.
    - `with_events`: add emoji `events` to some messages (`OASST2` and `BACKEND` only).

    Generation is lazy: one tree is built at a time.
    """
    if n_trees < 0:
        raise ValueError(f"n_trees must be >= 0, got {n_trees}")
    weights = STATE_MIXES[state_weights] if isinstance(state_weights, str) else state_weights
    generator = _Generator(
        seed=seed,
        variant=Variant(variant),
        avg_messages=avg_messages,
        state_weights=weights,
        n_users=n_users,
        max_depth=max_depth,
        max_children=max_children,
        with_events=with_events,
    )
    for _ in range(n_trees):
        yield generator.tree()


# --------------------------------------------------------------------------------------------
# Walking and counting


def _root(tree_or_message: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if "message_id" in tree_or_message:
        return tree_or_message
    prompt: Mapping[str, Any] | None = tree_or_message.get("prompt")
    return prompt


def walk(tree: Mapping[str, Any]) -> Iterator[tuple[Message, int, str | None]]:
    """Yield `(message, depth, parent_id)` for every message of a tree, depth first, replies in
    file order (the order of Hugging Face's flat rows).

    `tree` is a tree object or a message node. `depth` is 0 for the root and `parent_id` is the
    `message_id` of the enclosing message (None for the root), taken from the nesting and not from
    the message's own `parent_id` key, so that the two can be compared. Iterative: any depth.
    """
    root = _root(tree)
    if root is None:
        return
    stack: list[tuple[Any, int, str | None]] = [(root, 0, None)]
    while stack:
        message, depth, parent_id = stack.pop()
        yield message, depth, parent_id
        replies = message.get("replies")
        if replies:
            message_id = message["message_id"]
            stack.extend((reply, depth + 1, message_id) for reply in reversed(replies))


def count_messages(tree: Mapping[str, Any]) -> int:
    """The number of messages of a tree object (0 without a `prompt`) or of a message subtree."""
    root = _root(tree)
    if root is None:
        return 0
    count = 0
    stack: list[Any] = [root]
    while stack:
        message = stack.pop()
        count += 1
        replies = message.get("replies")
        if replies:
            stack.extend(replies)
    return count


# --------------------------------------------------------------------------------------------
# Files


class WriteResult(NamedTuple):
    """What `write_file` wrote."""

    trees: int
    messages: int


def write_file(
    path: str | os.PathLike[str],
    trees: Iterable[Mapping[str, Any]],
    gzip: bool | None = None,
    *,
    ensure_ascii: bool = True,
    compresslevel: int = 6,
) -> WriteResult:
    """Write `trees` to `path`, one JSON object per line, each followed by `"\\n"`.

    `gzip`: compress (None: when the name ends with `.gz`). The gzip header holds no file name
    and a zero time, so the bytes depend only on the trees. `ensure_ascii` (as `json.dump`'s
    default and the published files) writes non-ASCII text as `\\uXXXX` escapes; False writes
    UTF-8. Streams: `trees` is consumed one at a time. Returns the numbers of trees and messages.
    """
    use_gzip = os.fspath(path).endswith(".gz") if gzip is None else gzip
    n_trees = n_messages = 0
    dumps = json.dumps
    with open(path, "wb") as raw:
        out: io.BufferedIOBase = raw
        if use_gzip:
            out = _gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=compresslevel
            )
        try:
            batch: list[str] = []
            for tree in trees:
                batch.append(dumps(tree, ensure_ascii=ensure_ascii))
                n_trees += 1
                n_messages += count_messages(tree)
                if len(batch) >= 512:
                    batch.append("")
                    out.write("\n".join(batch).encode())
                    batch = []
            if batch:
                batch.append("")
                out.write("\n".join(batch).encode())
        finally:
            if out is not raw:
                out.close()
    return WriteResult(n_trees, n_messages)


def read_file(path: str | os.PathLike[str]) -> Iterator[Tree]:
    """Yield the trees of a tree file (gzipped when the name ends with `.gz`), one per line."""
    opener: Any = _gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                tree: Tree = json.loads(line)
                yield tree


# --------------------------------------------------------------------------------------------
# Command line


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tests.oa_files OUT [--trees N] [--variant V] [--seed S] ...`."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.oa_files",
        description="Write a deterministic Open-Assistant tree export file (JSON Lines).",
    )
    parser.add_argument("out", help="output path; gzipped when it ends with .gz")
    parser.add_argument("--trees", type=int, default=70_000, help="number of trees (70000)")
    parser.add_argument(
        "--variant", choices=[v.value for v in Variant], default=Variant.OASST2.value
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--avg-messages", type=float, default=3.0, help="messages per tree (3.0)")
    parser.add_argument("--state-mix", choices=sorted(STATE_MIXES), default="default")
    parser.add_argument("--users", type=int, default=10_000, help="size of the user pool")
    parser.add_argument("--with-events", action="store_true", help="add emoji events")
    parser.add_argument(
        "--gzip", action=argparse.BooleanOptionalAction, default=None, help="default: by name"
    )
    parser.add_argument("--compresslevel", type=int, default=6)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    trees = generate_trees(
        args.trees,
        seed=args.seed,
        variant=Variant(args.variant),
        avg_messages=args.avg_messages,
        state_weights=args.state_mix,
        n_users=args.users,
        with_events=args.with_events,
    )
    result = write_file(args.out, trees, gzip=args.gzip, compresslevel=args.compresslevel)
    seconds = time.perf_counter() - started
    size = os.path.getsize(args.out)
    print(
        f"trees={result.trees} messages={result.messages} bytes={size} "
        f"seconds={seconds:.2f} path={args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
