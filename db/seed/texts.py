"""The demo texts: user names, prompt and answer templates, and a few native-language texts.

`prompt`, `answer` and `follow_up` draw a message text from the tree's random stream; languages
without native texts here use the English templates.
"""

from __future__ import annotations

import random

from db.seed.draw import choice

FIRST_NAMES = (
    "Alex", "Maria", "Jonas", "Lucía", "Dmitri", "Wei", "Anna", "Pierre", "João", "Laia",
    "Olena", "Giulia", "Yuki", "Somchai", "Iker", "Linh", "Minji", "Kasia", "Bence", "Omar",
    "Sanne", "Emre", "Sara", "Mikkel", "Elsa", "Aino", "Tomáš", "Putri", "Sam", "Noah",
)  # fmt: skip
LAST_INITIALS = tuple("ABCDEFGHIJKLMNOPRSTVWZ")

_TASKS = (
    "bake sourdough bread at home",
    "set up a Python virtual environment",
    "learn to touch type faster",
    "fix a leaking kitchen faucet",
    "prepare for a job interview",
    "write a good cover letter",
    "start running as a beginner",
    "keep basil alive indoors",
    "center a div in CSS",
    "save money on groceries",
    "reverse a linked list in C",
    "improve my sleep schedule",
    "negotiate a higher salary",
    "make cold brew coffee",
)
_CONCEPTS = (
    "quantum entanglement",
    "inflation",
    "photosynthesis",
    "public key cryptography",
    "the Monty Hall problem",
    "black holes",
    "compound interest",
    "neural networks",
    "the water cycle",
    "supply and demand",
    "recursion",
    "plate tectonics",
    "the placebo effect",
)
_THINGS = (
    "a lighthouse keeper",
    "autumn rain",
    "a cat who learns to code",
    "the last tree on Mars",
    "a lost umbrella",
    "the ocean at night",
    "an old bookshop",
    "a robot gardener",
    "the first snow of winter",
)
_ACTIVITIES = (
    "learning a new language",
    "public speaking",
    "camping in the mountains",
    "working from home",
    "studying for exams",
    "photographing the night sky",
    "cooking for a large group",
)
_PAIRS = (
    "a list and a tuple in Python",
    "weather and climate",
    "a virus and a bacterium",
    "TCP and UDP",
    "empathy and sympathy",
    "stocks and bonds",
)
_CHOICES = (
    "electric cars",
    "remote work",
    "nuclear energy",
    "learning Rust instead of Go",
    "renting versus buying a home",
    "a four-day work week",
)
_PROMPTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("How do I {}?", _TASKS),
    ("What is the best way to {}?", _TASKS),
    ("Explain {} in simple terms.", _CONCEPTS),
    ("Can you explain {} to a ten-year-old?", _CONCEPTS),
    ("Write a poem about {}.", _THINGS),
    ("Write a short story about {}.", _THINGS),
    ("What are some good tips for {}?", _ACTIVITIES),
    ("What is the difference between {}?", _PAIRS),
    ("What are the pros and cons of {}?", _CHOICES),
)
_OPENERS = (
    "Sure!",
    "Good question.",
    "Of course.",
    "Happy to help.",
    "Here is a short answer.",
    "",
)
_ANSWER_BODIES = (
    "When it comes to {}, the key is to start small and build on the basics step by step.",
    "There are three things to keep in mind about {}: preparation, patience and practice.",
    "In short, {} is easier than it looks once you break it into small parts.",
    "A common mistake with {} is trying to do everything at once; focus on one thing first.",
    "Most people find that {} gets much clearer with a concrete example, so here is one.",
    "Here is a brief overview of {}, followed by a few practical suggestions.",
)
_CLOSERS = (
    "Let me know if you would like more detail.",
    "I hope this helps!",
    "Would you like me to go deeper into any of these points?",
    "",
)
_FOLLOW_UPS = (
    "Thanks! Can you give me a concrete example?",
    "Could you explain that in more detail?",
    "What would you recommend for a complete beginner?",
    "Can you make it shorter?",
    "Is there anything I should avoid with {}?",
    "That makes sense. How long does it usually take to get good at {}?",
    "Interesting. Are there any good resources about {}?",
)

# A few languages get native texts; the others use the English templates.
_LOCAL_TEXTS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "es": (
        (
            "¿Cómo puedo aprender a programar desde cero?",
            "Explícame qué es la inflación con palabras sencillas.",
            "Escribe un poema sobre el mar en invierno.",
            "¿Qué consejos me das para dormir mejor?",
            "¿Cuál es la diferencia entre el clima y el tiempo?",
        ),
        (
            "¡Claro! Lo más importante es empezar poco a poco y practicar cada día.",
            "Buena pregunta. En resumen, hay tres cosas a tener en cuenta: paciencia, "
            "constancia y curiosidad.",
            "Aquí tienes una explicación breve con un ejemplo práctico.",
        ),
        (
            "¡Gracias! ¿Me puedes dar un ejemplo concreto?",
            "¿Podrías explicarlo con más detalle?",
            "¿Qué me recomiendas si soy principiante?",
        ),
    ),
    "de": (
        (
            "Wie backe ich ein gutes Sauerteigbrot?",
            "Erkläre mir bitte Quantenverschränkung in einfachen Worten.",
            "Schreibe ein Gedicht über den Herbst.",
            "Was sind die Vor- und Nachteile von Elektroautos?",
        ),
        (
            "Gerne! Am wichtigsten ist es, klein anzufangen und regelmäßig zu üben.",
            "Gute Frage. Kurz gesagt kommt es auf Geduld und Übung an.",
            "Hier ist eine kurze Übersicht mit ein paar praktischen Tipps.",
        ),
        (
            "Danke! Kannst du mir ein konkretes Beispiel geben?",
            "Kannst du das genauer erklären?",
        ),
    ),
    "fr": (
        (
            "Comment puis-je améliorer mon sommeil ?",
            "Explique-moi la photosynthèse simplement.",
            "Écris un poème sur une vieille librairie.",
            "Quelle est la différence entre TCP et UDP ?",
        ),
        (
            "Bien sûr ! Le plus important est de commencer petit et de rester régulier.",
            "Bonne question. En bref, il faut de la patience et de la pratique.",
            "Voici un court résumé, suivi de quelques conseils pratiques.",
        ),
        (
            "Merci ! Peux-tu me donner un exemple concret ?",
            "Pourrais-tu détailler un peu plus ?",
        ),
    ),
    "pt-BR": (
        (
            "Como faço para economizar dinheiro no mercado?",
            "Explique o que são juros compostos de forma simples.",
            "Escreva um poema sobre a chuva de outono.",
        ),
        (
            "Claro! O mais importante é começar aos poucos e praticar todos os dias.",
            "Boa pergunta. Resumindo, tudo depende de paciência e prática.",
        ),
        (
            "Obrigado! Pode me dar um exemplo?",
            "Pode explicar com mais detalhes?",
        ),
    ),
    "ru": (
        (
            "Как научиться быстро печатать вслепую?",
            "Объясни простыми словами, что такое чёрные дыры.",
            "Напиши стихотворение о первом снеге.",  # noqa: RUF001
            "В чём разница между вирусом и бактерией?",  # noqa: RUF001
        ),
        (
            "Конечно! Главное — начинать с малого и заниматься каждый день.",  # noqa: RUF001
            "Хороший вопрос. Если коротко, всё решают терпение и практика.",
            "Вот краткий обзор и несколько практических советов.",
        ),
        (
            "Спасибо! Можешь привести конкретный пример?",
            "Можно подробнее?",
        ),
    ),
    "zh": (
        (
            "我怎样才能提高英语口语?",
            "请用简单的话解释一下什么是通货膨胀。",
            "写一首关于秋雨的诗。",
            "远程办公有哪些优缺点?",
        ),
        (
            "当然可以!最重要的是从小处开始,每天坚持练习。",
            "好问题。简单来说,关键在于耐心和练习。",
            "下面是一个简短的概述,以及几个实用的建议。",
        ),
        (
            "谢谢!能举一个具体的例子吗?",
            "可以再详细解释一下吗?",
        ),
    ),
}


def prompt(rng: random.Random, lang: str) -> tuple[str, str]:
    """A topic and a prompt about it."""
    template, fillers = choice(rng, _PROMPTS)
    topic = choice(rng, fillers)
    local = _LOCAL_TEXTS.get(lang)
    if local is not None:
        return topic, choice(rng, local[0])
    return topic, template.format(topic)


def answer(rng: random.Random, lang: str, topic: str) -> str:
    local = _LOCAL_TEXTS.get(lang)
    if local is not None:
        return choice(rng, local[1])
    parts = (
        choice(rng, _OPENERS),
        choice(rng, _ANSWER_BODIES).format(topic),
        choice(rng, _CLOSERS),
    )
    return " ".join(part for part in parts if part)


def follow_up(rng: random.Random, lang: str, topic: str) -> str:
    local = _LOCAL_TEXTS.get(lang)
    if local is not None:
        return choice(rng, local[2])
    return choice(rng, _FOLLOW_UPS).format(topic)
