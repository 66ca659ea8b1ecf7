"""Generate small samples, in their real formats, of the datasets SelFee trained on.

    python data/make_selfee_samples.py                   # writes data/instructions/*
    python data/make_selfee_samples.py --out /tmp/x --seed 7

The HF datasets cannot be downloaded here, so each file copies the real layout (field names,
types, nesting, enum codes, answer conventions) with synthetic content: a few hand-written
templates per dataset filled from one seeded `random.Random`, so the same arguments give the
same bytes. Planted on purpose (see `PLANTED`): English pairs whose answer is itself a
question, non-English pairs in alpaca/flan/sharegpt, and exact duplicate user queries within
alpaca and between alpaca and ShareGPT's first human turns.

`generate(dataset, n, seed)` streams n rows of one dataset for benchmarks: past the shipped
sizes the templates repeat, but ids stay unique and query texts are varied (an index is
appended) so that most queries stay distinct.
"""

from __future__ import annotations

import argparse
import copy
import html
import json
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT_DIR = HERE / "instructions"

# dataset -> (file name, HF id or "" when the dataset has none)
DATASETS: dict[str, tuple[str, str]] = {
    "alpaca": ("alpaca.json", "tatsu-lab/alpaca"),
    "flan": ("flan.jsonl", "SirNeural/flan_v2"),
    "gsm8k": ("gsm8k.jsonl", "openai/gsm8k"),
    "aqua_rat": ("aqua_rat.jsonl", "deepmind/aqua_rat"),
    "competition_math": ("competition_math.jsonl", "hendrycks/competition_math"),
    "conala": ("conala.jsonl", "neulab/conala"),
    "mbpp": ("mbpp.jsonl", "google-research-datasets/mbpp"),
    "code_contests": ("code_contests.jsonl", "deepmind/code_contests"),
    "drrepair": ("drrepair.jsonl", ""),
    "sharegpt": ("sharegpt.json", "anon8231489123/ShareGPT_Vicuna_unfiltered"),
}

# Rows per shipped file. FLAN needs five tasks of at least 15 rows so that a cap of ten per
# task removes something: 75 generated rows (15 per task) plus its planted rows.
FILE_ROWS: dict[str, int] = {
    "alpaca": 52,
    "flan": 78,
    "gsm8k": 36,
    "aqua_rat": 36,
    "competition_math": 36,
    "conala": 40,
    "mbpp": 36,
    "code_contests": 32,
    "drrepair": 36,
    "sharegpt": 36,
}

PROSE = '<div class="markdown prose w-full break-words dark:prose-invert light">{}</div>'
PRE = (
    '<pre><div class="bg-black mb-4 rounded-md"><div class="flex items-center relative '
    'text-gray-200 bg-gray-800 px-4 py-2 text-xs font-sans"><span class="">{lang}</span>'
    '<button class="flex ml-auto gap-2">Copy code</button></div><div class="p-4 '
    'overflow-y-auto"><code class="!whitespace-pre hljs language-{lang}">{code}</code>'
    "</div></div></pre>"
)


def _p(*paragraphs: str) -> str:
    """ChatGPT's answer HTML for plain paragraphs."""
    return PROSE.format("".join(f"<p>{html.escape(t, quote=False)}</p>" for t in paragraphs))


# --- planted rows -------------------------------------------------------------------------
# Each planted query appears exactly as listed; generated rows never repeat them.

_DUP_ALPACA = [  # each twice in alpaca (the second answer differs, as in the real data)
    "Name three primary colors.",
    "Describe the water cycle in two sentences.",
]
_DUP_SHAREGPT = [  # once in alpaca, once as a ShareGPT first human turn
    "What are the main benefits of regular exercise?",
    "Explain the difference between a list and a tuple in Python.",
]
_Q_ALPACA = [
    "Ask a follow-up question to the statement below.",
    "Write a question that a customer might ask about the product.",
]
_Q_FLAN = (
    "Continue the conversation about lighthouses by writing what the curious person asks next."
    "\n\nPerson: Lighthouses guided ships along dangerous coasts for centuries.\n"
    "Guide: Yes, and many of them are still in use today with automated lamps."
)
_Q_SHAREGPT = "I want to build a small website for my bakery. Can you help me with it?"
_ES_ALPACA = "Escribe una lista de tres consejos para dormir mejor por la noche."
_DE_FLAN = (
    "Lies den folgenden Text und beantworte die Frage.\n\nDer Rhein ist einer der längsten "
    "Flüsse Europas und fließt durch die Schweiz, Deutschland und die Niederlande.\n\n"
    "Frage: Durch welche Länder fließt der Rhein?"
)
_ZH_SHAREGPT = "请用简单的语言解释一下什么是机器学习，并举一个日常生活中的例子。"

PLANTED: dict[str, list[str]] = {
    "question_answers": [*_Q_ALPACA, _Q_FLAN, _Q_SHAREGPT],
    "non_english": [_ES_ALPACA, _DE_FLAN, _ZH_SHAREGPT],
    "duplicates": [*_DUP_ALPACA, *_DUP_SHAREGPT],
}

_PLANTED_ROWS: dict[str, list[dict[str, Any]]] = {
    "alpaca": [
        {"instruction": _DUP_ALPACA[0], "input": "", "output": "The three primary colors are red, blue and yellow."},
        {"instruction": _DUP_ALPACA[0], "input": "", "output": "Red, yellow and blue are the three traditional primary colors."},
        {"instruction": _DUP_ALPACA[1], "input": "", "output": "Water evaporates from oceans and lakes, rises and condenses into clouds. It then falls back to the ground as rain or snow and flows back into rivers and seas."},
        {"instruction": _DUP_ALPACA[1], "input": "", "output": "The sun heats surface water until it evaporates and forms clouds. The clouds release the water as precipitation, which collects and starts the cycle again."},
        {"instruction": _DUP_SHAREGPT[0], "input": "", "output": "Regular exercise strengthens the heart and muscles, helps control weight, improves sleep and lifts mood by reducing stress."},
        {"instruction": _DUP_SHAREGPT[1], "input": "", "output": "A list is mutable, so you can add, remove or change its items, while a tuple is immutable once it is created. Tuples are often used for fixed records and as dictionary keys."},
        {"instruction": _Q_ALPACA[0], "input": "I just got back from a trip to Japan.", "output": "What was the most memorable place you visited in Japan?"},
        {"instruction": _Q_ALPACA[1], "input": "A stainless steel water bottle that keeps drinks cold for 24 hours.", "output": "Does the bottle also keep hot drinks warm, and for how long?"},
        {"instruction": _ES_ALPACA, "input": "", "output": "1. Acuéstate y levántate a la misma hora todos los días.\n2. Evita las pantallas una hora antes de dormir.\n3. Mantén tu habitación fresca, oscura y silenciosa."},
    ],
    "flan": [
        {"inputs": _Q_FLAN, "targets": "Person: How did lighthouse keepers keep the lamps burning before electricity?", "task": "wiki_dialog"},
        {"inputs": _DE_FLAN, "targets": "Der Rhein fließt durch die Schweiz, Deutschland und die Niederlande.", "task": "cosmos_qa"},
    ],
    "sharegpt": [
        {"id": "dUpx3Lk", "conversations": [
            {"from": "human", "value": _DUP_SHAREGPT[0]},
            {"from": "gpt", "value": _p("Regular exercise has many benefits:", "It improves heart health, builds muscle and bone strength, helps with weight control, and boosts mood and sleep quality.")},
        ], "model": "Model: GPT-4"},
        {"id": "tPl2Qa9", "conversations": [
            {"from": "human", "value": _DUP_SHAREGPT[1]},
            {"from": "gpt", "value": PROSE.format("<p>The main difference is mutability: a list can be changed after it is created, a tuple cannot.</p>" + PRE.format(lang="python", code="items = [1, 2, 3]\nitems.append(4)   # fine\n\npoint = (1, 2)\npoint[0] = 5      # TypeError\n") + "<p>Use a tuple for fixed collections of values and a list when the contents change.</p>")},
            {"from": "human", "value": "Which one is faster?"},
            {"from": "gpt", "value": _p("Tuples are slightly faster to create and use a little less memory, but for most programs the difference does not matter.")},
        ], "model": "Model: GPT-4"},
        {"id": "qAsk7Rb", "conversations": [
            {"from": "human", "value": _Q_SHAREGPT},
            {"from": "gpt", "value": _p("Of course! Before we start, what should the website include: a menu, opening hours, online orders, or something else?")},
        ], "model": "Model: GPT-4"},
        {"id": "zhMl5Xe", "conversations": [
            {"from": "human", "value": _ZH_SHAREGPT},
            {"from": "gpt", "value": _p("机器学习是让计算机从数据中自动学习规律的方法，而不是由人一条一条地写规则。", "例如，邮箱的垃圾邮件过滤器会根据大量已标记的邮件学习，自动判断新邮件是不是垃圾邮件。")},
            {"from": "human", "value": "那深度学习和机器学习有什么区别？"},
            {"from": "gpt", "value": _p("深度学习是机器学习的一个分支，它使用多层神经网络，能够从图片、声音和文本等原始数据中自动提取特征。")},
        ], "model": "Model: GPT-4"},
    ],
}


# --- shared pools -------------------------------------------------------------------------

NAMES = ["Natalia", "James", "Priya", "Carlos", "Mei", "Omar", "Sofia", "Liam", "Aisha",
         "Tom", "Hannah", "Diego", "Yuki", "Grace", "Ben", "Fatima", "Leo", "Chloe"]


def _pick(rng: random.Random, pool: list[Any]) -> Any:
    return pool[rng.randrange(len(pool))]


# --- alpaca: {instruction, input, output} -------------------------------------------------

_TOPICS = ["healthy", "productive", "focused", "organized", "calm", "motivated", "safe online",
           "hydrated", "creative", "energized"]
_TIPS = ["Set a clear goal for each day.", "Take short breaks every hour.",
         "Get seven to eight hours of sleep.", "Drink a glass of water with every meal.",
         "Keep your workspace tidy.", "Go for a short walk outside.",
         "Write down what you are grateful for.", "Turn off notifications while you work.",
         "Plan tomorrow before you go to bed.", "Use strong and unique passwords."]
_ANIMALS = {"dolphin": "mammal", "eagle": "bird", "iguana": "reptile", "bat": "mammal",
            "penguin": "bird", "crocodile": "reptile", "whale": "mammal", "owl": "bird",
            "tortoise": "reptile", "kangaroo": "mammal", "parrot": "bird", "gecko": "reptile"}
_ACTIVE = [("The chef cooked a delicious meal.", "A delicious meal was cooked by the chef."),
           ("The students painted the fence.", "The fence was painted by the students."),
           ("My brother fixed the old bicycle.", "The old bicycle was fixed by my brother."),
           ("The committee approved the new budget.", "The new budget was approved by the committee."),
           ("A storm damaged the roof last night.", "The roof was damaged by a storm last night."),
           ("The museum displays ancient coins.", "Ancient coins are displayed by the museum.")]
_CONCEPTS = {
    "inflation": "Inflation means that prices go up over time, so the same amount of money buys less than before.",
    "photosynthesis": "Photosynthesis is how plants use sunlight, water and carbon dioxide to make their own food and release oxygen.",
    "gravity": "Gravity is the force that pulls objects toward each other; it keeps us on the ground and the Moon around the Earth.",
    "a budget": "A budget is a plan that shows how much money you expect to earn and how you will spend or save it.",
    "an algorithm": "An algorithm is a list of clear steps that solves a problem, like a recipe that a computer can follow.",
    "democracy": "Democracy is a system of government in which citizens choose their leaders by voting.",
    "compound interest": "Compound interest is interest earned on both the money you saved and the interest it already earned.",
    "a vaccine": "A vaccine trains the immune system to recognise a germ so the body can fight it off quickly later.",
}
_HAIKU_THINGS = {"the ocean": ("Waves fold into foam", "salt wind carries gull voices", "the tide keeps its time"),
                 "autumn": ("Red leaves drift and spin", "the maple lets go softly", "cool air smells of smoke"),
                 "a city at night": ("Neon on wet streets", "a late train hums past the blocks", "windows glow like stars"),
                 "the mountains": ("Snow on granite peaks", "the trail climbs through quiet pines", "clouds rest on the ridge"),
                 "morning coffee": ("Steam curls from the cup", "bitter warmth wakes sleepy hands", "the day begins slow")}
_PARAGRAPHS = [
    ("Bees pollinate about a third of the crops we eat. Without them, fruits such as apples and "
     "almonds would become rare and expensive. Scientists are worried because bee populations "
     "have fallen in many countries.",
     "Bees pollinate many of our crops, and their decline threatens the supply of foods such as apples and almonds."),
    ("The town library extended its opening hours this month. It now stays open until nine in "
     "the evening on weekdays, and it has added a quiet study room for students.",
     "The town library now opens later on weekdays and has a new quiet study room for students."),
    ("Remote work has become common since 2020. Many employees enjoy the flexibility, but some "
     "managers worry about communication and team spirit.",
     "Remote work is now common and valued for its flexibility, though managers worry about communication."),
    ("Electric cars are becoming cheaper each year as battery prices fall. Charging stations are "
     "also spreading along highways, which makes long trips easier.",
     "Falling battery prices and more charging stations are making electric cars cheaper and more practical."),
]
_RHYMES = {"cat": ["hat", "bat", "mat", "rat", "flat", "chat"],
           "light": ["night", "kite", "bright", "sight", "white", "flight"],
           "cake": ["lake", "bake", "make", "snake", "wake", "shake"],
           "sun": ["fun", "run", "bun", "done", "ton", "one"],
           "tree": ["free", "sea", "bee", "key", "knee", "tea"]}


def _alpaca_row(rng: random.Random, k: int) -> dict[str, Any]:
    kind = k % 8
    if kind == 0:
        topic, n = _pick(rng, _TOPICS), rng.choice([3, 4, 5])
        tips = rng.sample(_TIPS, n)
        return {"instruction": f"Give {n} tips for staying {topic}.", "input": "",
                "output": "\n".join(f"{i}. {t}" for i, t in enumerate(tips, 1))}
    if kind == 1:
        animal = _pick(rng, sorted(_ANIMALS))
        verb = rng.choice(["Classify", "Categorize"])
        return {"instruction": f"{verb} the following animal as a mammal, bird, or reptile.",
                "input": f"{animal.capitalize()}",
                "output": f"The {animal} is a {_ANIMALS[animal]}."}
    if kind == 2:
        active, passive = _pick(rng, _ACTIVE)
        verb = rng.choice(["Rewrite", "Change", "Convert"])
        return {"instruction": f"{verb} the following sentence in the passive voice.",
                "input": active, "output": passive}
    if kind == 3:
        concept = _pick(rng, sorted(_CONCEPTS))
        who = rng.choice(["a child", "a ten-year-old", "someone new to the topic", "a beginner"])
        return {"instruction": f"Explain what {concept} means to {who}.", "input": "",
                "output": _CONCEPTS[concept]}
    if kind == 4:
        c = rng.randrange(-20, 101)
        f = c * 9 / 5 + 32
        ask = rng.choice(["How many degrees Fahrenheit are {} degrees Celsius?",
                          "What is {} degrees Celsius in Fahrenheit?"])
        return {"instruction": ask.format(c), "input": "",
                "output": f"{c} degrees Celsius is {f:g} degrees Fahrenheit, because F = C x 9/5 + 32."}
    if kind == 5:
        thing = _pick(rng, sorted(_HAIKU_THINGS))
        style = rng.choice(["", " in a calm tone", " for a greeting card", " about change"])
        return {"instruction": f"Write a haiku about {thing}{style}.", "input": "",
                "output": "\n".join(_HAIKU_THINGS[thing])}
    if kind == 6:
        text, summary = _pick(rng, _PARAGRAPHS)
        verb = rng.choice(["Summarize", "Sum up", "Condense"])
        return {"instruction": f"{verb} the following paragraph in one sentence.",
                "input": text, "output": summary}
    word = _pick(rng, sorted(_RHYMES))
    n = rng.choice([3, 4, 5])
    words = rng.sample(_RHYMES[word], n)
    return {"instruction": f"Generate a list of {n} words that rhyme with '{word}'.", "input": "",
            "output": "Here are some words that rhyme with " + word + ": " + ", ".join(words) + "."}


# --- flan: {inputs, targets, task} --------------------------------------------------------

FLAN_TASKS = ["cot_gsm8k", "anli_r1", "cosmos_qa", "wiki_dialog", "natinst_task123"]
_ITEMS = ["apples", "pencils", "stickers", "marbles", "cookies", "books", "stamps", "shells"]
_PEOPLE = [("Marie Curie", "Polish-born French", "physicist and chemist", "1867", "1934",
            "won two Nobel Prizes"),
           ("Isaac Newton", "English", "mathematician and physicist", "1643", "1727",
            "described the laws of motion"),
           ("Frida Kahlo", "Mexican", "painter", "1907", "1954", "painted many self-portraits"),
           ("Nelson Mandela", "South African", "political leader", "1918", "2013",
            "became president in 1994"),
           ("Ada Lovelace", "English", "mathematician", "1815", "1852",
            "wrote the first published computer program"),
           ("Louis Armstrong", "American", "jazz trumpeter", "1901", "1971",
            "recorded the song What a Wonderful World")]
_COSMOS = [
    ("I missed the bus this morning because my alarm did not ring. I had to walk to work in the "
     "rain and arrived twenty minutes late.", "Why was the narrator late for work?",
     "Their alarm did not ring, so they missed the bus and had to walk."),
    ("My sister finally adopted a puppy last weekend. She had wanted a dog for years, but her "
     "old apartment did not allow pets.", "What probably changed for the narrator's sister?",
     "She moved to a new home where pets are allowed."),
    ("We planned a picnic by the lake, but when we arrived the whole park was closed for "
     "repairs. We ended up eating sandwiches in the car.", "How did the narrator likely feel?",
     "They were probably disappointed that the picnic did not go as planned."),
    ("After months of practice, Jake played his first concert in front of the whole school. "
     "His hands were shaking, but the audience cheered loudly at the end.",
     "What may happen after the concert?", "Jake will probably feel proud and keep playing music."),
    ("The bakery on our street closed after forty years. The owner said he was tired and "
     "wanted to spend more time with his grandchildren.", "Why did the bakery close?",
     "The owner wanted to retire and spend time with his family."),
]
_DIALOG_TOPICS = {
    "the Great Barrier Reef": ("What is the Great Barrier Reef?",
                               "It is the world's largest coral reef system, off the coast of Queensland, Australia."),
    "volcanoes": ("How do volcanoes form?",
                  "Most volcanoes form where tectonic plates meet and melted rock rises to the surface."),
    "the Eiffel Tower": ("When was the Eiffel Tower built?",
                         "It was built between 1887 and 1889 for the World's Fair in Paris."),
    "honey bees": ("How do honey bees make honey?",
                   "They collect nectar from flowers and evaporate most of its water inside the hive."),
    "the Moon landing": ("Who first walked on the Moon?",
                         "Neil Armstrong was the first person to walk on the Moon, in July 1969."),
}
_REVIEWS = [("The battery lasts all day and the screen is sharp.", "Positive"),
            ("It broke after two days and support never answered my emails.", "Negative"),
            ("Great value for the price, I would buy it again.", "Positive"),
            ("The instructions were confusing and two parts were missing.", "Negative"),
            ("Comfortable, light and looks exactly like the pictures.", "Positive"),
            ("Way too loud, and it stopped working after a week.", "Negative")]


def _flan_row(rng: random.Random, k: int) -> dict[str, Any]:
    task = FLAN_TASKS[k % len(FLAN_TASKS)]
    if task == "cot_gsm8k":
        name, item = _pick(rng, NAMES), _pick(rng, _ITEMS)
        a, b, c = rng.randrange(3, 30), rng.randrange(2, 9), rng.randrange(2, 12)
        inputs = (f"{name} has {a} {item}. {name} buys {b} packs with {c} {item} in each pack. "
                  f"How many {item} does {name} have now? Let's think first. Chain of thought:")
        targets = (f"{name} buys {b} * {c} = {b * c} {item}. So {name} has {a} + {b * c} = "
                   f"{a + b * c} {item} now.\nSo, the answer is {a + b * c}.")
    elif task == "anli_r1":
        person, nat, job, born, died, fact = _pick(rng, _PEOPLE)
        article = "an" if nat[0] in "AEIOU" else "a"
        premise = f"{person} ({born} - {died}) was {article} {nat} {job} who {fact}."
        label = rng.randrange(3)
        # The answer option, then a short reason (bare "Yes"/"No" is too short for lid.176).
        if label == 0:
            hyp = f"{person} was a {job}."
            ans = f"Yes. The paragraph says that {person} was a {job}."
        elif label == 1:
            hyp = f"{person} had two brothers."
            ans = f"It's impossible to say. The paragraph does not mention the family of {person}."
        else:
            year = int(died) + rng.randrange(1, 40)
            hyp = f"{person} was born after {year}."
            ans = f"No. {person} was born in {born} and died in {died}, long before {year}."
        inputs = (f"{premise}\n\nBased on the paragraph above can we conclude that \"{hyp}\"?\n\n"
                  "OPTIONS:\n- Yes\n- It's impossible to say\n- No")
        targets = ans
    elif task == "cosmos_qa":
        context, question, answer = _pick(rng, _COSMOS)
        lead = rng.choice(["Read the following article and answer the question.",
                           "Answer the question about the text below.",
                           "Read the passage and answer the question that follows."])
        style = rng.choice(["", " Answer in one sentence.", " Explain briefly."])
        inputs = f"{lead}{style}\n\n{context}\n\nQuestion: {question}"
        targets = answer
    elif task == "wiki_dialog":
        topic = _pick(rng, sorted(_DIALOG_TOPICS))
        question, answer = _DIALOG_TOPICS[topic]
        who = rng.choice(["a student", "a tourist", "a curious child", "a teacher"])
        inputs = (f"Imagine you are an expert on {topic} talking to {who}. Write the next turn of "
                  f"the conversation.\n\nPerson: {question}\nExpert:")
        targets = answer
    else:
        review, label = _pick(rng, _REVIEWS)
        n = rng.randrange(1, 4)
        inputs = ("Definition: In this task, you are given a short product review. Your job is "
                  "to classify the review as \"Positive\" or \"Negative\" based on its content."
                  f"\n\nNow complete example {n} -\nInput: {review}\nOutput:")
        targets = label
    return {"inputs": inputs, "targets": targets, "task": task}


# --- gsm8k: {question, answer} with <<calc=result>> annotations and "#### N" -------------


def _gsm8k_row(rng: random.Random, k: int) -> dict[str, Any]:
    name, kind = _pick(rng, NAMES), k % 4
    if kind == 0:
        a = 2 * rng.randrange(10, 60)
        month1, month2 = rng.choice([("April", "May"), ("June", "July"), ("March", "April")])
        item = _pick(rng, ["clips", "cupcakes", "bracelets", "tickets"])
        half, total = a // 2, a + a // 2
        return {"question": f"{name} sold {item} to {a} of her friends in {month1}, and then she "
                            f"sold half as many {item} in {month2}. How many {item} did {name} sell "
                            f"altogether in {month1} and {month2}?",
                "answer": f"{name} sold {a}/2 = <<{a}/2={half}>>{half} {item} in {month2}.\n"
                          f"{name} sold {a}+{half} = <<{a}+{half}={total}>>{total} {item} "
                          f"altogether in {month1} and {month2}.\n#### {total}"}
    if kind == 1:
        rate, minutes = rng.randrange(8, 30), rng.choice([30, 40, 45, 50])
        earned = rate * minutes / 60
        e = f"{earned:g}"
        return {"question": f"{name} earns ${rate} an hour for babysitting. Yesterday, she just did "
                            f"{minutes} minutes of babysitting. How much did she earn?",
                "answer": f"{name} earns {rate}/60 = $<<{rate}/60={rate / 60:.4g}>>{rate / 60:.4g} per "
                          f"minute.\nWorking {minutes} minutes, she earned {rate}/60 * {minutes} = "
                          f"$<<{rate}/60*{minutes}={e}>>{e}.\n#### {e}"}
    if kind == 2:
        pages, days, extra = rng.randrange(10, 40), rng.randrange(3, 8), rng.randrange(5, 30)
        read = pages * days
        total = read + extra
        return {"question": f"{name} reads {pages} pages of a book every day. After {days} days "
                            f"there are still {extra} pages left. How many pages does the book have?",
                "answer": f"In {days} days {name} reads {pages}*{days} = <<{pages}*{days}={read}>>"
                          f"{read} pages.\nThe book has {read}+{extra} = <<{read}+{extra}={total}>>"
                          f"{total} pages.\n#### {total}"}
    boxes, per, price = rng.randrange(2, 9), rng.randrange(6, 25), rng.randrange(2, 6)
    eggs = boxes * per
    money = eggs * price
    return {"question": f"{name} packs {boxes} boxes with {per} eggs each and sells every egg for "
                        f"${price} at the farmers' market. How much money does {name} make?",
            "answer": f"{name} has {boxes}*{per} = <<{boxes}*{per}={eggs}>>{eggs} eggs.\n"
                      f"{name} makes {eggs}*{price} = $<<{eggs}*{price}={money}>>{money}.\n#### {money}"}


# --- aqua_rat: {question, options: ["A)..", ...], rationale, correct} ---------------------


def _options(rng: random.Random, answer: float, fmt: str) -> tuple[list[str], str]:
    wrong: set[float] = set()
    while len(wrong) < 4:
        delta = rng.choice([-3, -2, -1, 1, 2, 3, 4, 5]) * max(1, round(abs(answer) * 0.1))
        if answer + delta > 0 and answer + delta != answer:
            wrong.add(answer + delta)
    values = sorted([answer, *wrong])
    letter = "ABCDE"[values.index(answer)]
    return [f"{c}){fmt.format(v)}" for c, v in zip("ABCDE", values, strict=True)], letter


def _aqua_rat_row(rng: random.Random, k: int) -> dict[str, Any]:
    kind = k % 4
    if kind == 0:
        speed, hours = rng.randrange(30, 90), rng.randrange(2, 7)
        vehicle = _pick(rng, ["A train", "A car", "A bus", "A truck"])
        answer = speed * hours
        question = f"{vehicle} travels at {speed} km/hr for {hours} hours. What distance does it cover?"
        rationale = f"Distance = Speed * Time\n= {speed} * {hours}\n= {answer} km"
        fmt = "{:g} km"
    elif kind == 1:
        price, pct = rng.randrange(20, 200) * 10, rng.choice([10, 15, 20, 25, 30, 40])
        answer = price * (100 - pct) / 100
        question = f"A shopkeeper offers a discount of {pct}% on an article marked at Rs.{price}. What is the selling price?"
        rationale = f"Discount = {pct}% of {price} = {price * pct / 100:g}\nSelling price = {price} - {price * pct / 100:g} = {answer:g}"
        fmt = "Rs.{:g}"
    elif kind == 2:
        p, r, t = rng.randrange(5, 50) * 100, rng.randrange(3, 12), rng.randrange(2, 6)
        answer = p * r * t / 100
        question = f"What is the simple interest on Rs.{p} at {r}% per annum for {t} years?"
        rationale = f"S.I. = (P * R * T)/100\n= ({p} * {r} * {t})/100\n= {answer:g}"
        fmt = "Rs.{:g}"
    else:
        a, b, total = rng.randrange(1, 6), rng.randrange(2, 9), 0
        while a == b:
            b = rng.randrange(2, 9)
        total = (a + b) * rng.randrange(5, 40)
        answer = total * a // (a + b)
        question = f"Two numbers are in the ratio {a}:{b} and their sum is {total}. Find the smaller of the two numbers." if a < b else f"Two numbers are in the ratio {a}:{b} and their sum is {total}. Find the first number."
        rationale = f"Let the numbers be {a}x and {b}x.\n{a}x + {b}x = {total}\n{a + b}x = {total}\nx = {total // (a + b)}\nSo the number is {a} * {total // (a + b)} = {answer}"
        fmt = "{:g}"
    options, correct = _options(rng, answer, fmt)
    ending = rng.choice(["Answer: {}", "ANSWER:{}", "Answer is {}", "The answer is {}."])
    return {"question": question, "options": options,
            "rationale": rationale + "\n" + ending.format(correct), "correct": correct}


# --- competition_math (MATH): {problem, level, type, solution} with LaTeX and \boxed{} ----


def _math_gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


def _competition_math_row(rng: random.Random, k: int) -> dict[str, Any]:
    kind = k % 6
    level = f"Level {rng.randrange(1, 6)}"
    if kind == 0:
        a, x, b = rng.randrange(2, 10), rng.randrange(-9, 15), rng.randrange(1, 30)
        c = a * x + b
        return {"problem": f"Solve for $x$: ${a}x + {b} = {c}$.", "level": level, "type": "Algebra",
                "solution": f"Subtracting ${b}$ from both sides gives ${a}x = {c - b}$. Dividing by "
                            f"${a}$, we get $x = \\boxed{{{x}}}$."}
    if kind == 1:
        n, r = rng.randrange(5, 13), rng.randrange(2, 5)
        num, den, value = 1, 1, 1
        for i in range(r):
            num, den = num * (n - i), den * (i + 1)
        value = num // den
        tops = " \\times ".join(str(n - i) for i in range(r))
        bottoms = " \\times ".join(str(i + 1) for i in range(r, 0, -1))
        return {"problem": f"Compute $\\dbinom{{{n}}}{{{r}}}$.", "level": level,
                "type": "Counting & Probability",
                "solution": f"$$\\dbinom{{{n}}}{{{r}}} = \\dfrac{{{tops}}}{{{bottoms}}} = "
                            f"\\boxed{{{value}}}.$$"}
    if kind == 2:
        a, b = rng.randrange(2, 40) * rng.choice([2, 3, 6]), rng.randrange(2, 40) * rng.choice([2, 4, 9])
        g = _math_gcd(a, b)
        return {"problem": f"What is the greatest common divisor of ${a}$ and ${b}$?", "level": level,
                "type": "Number Theory",
                "solution": f"Using the Euclidean algorithm, $\\gcd({a}, {b}) = \\gcd({b}, {a % b})$, "
                            f"and continuing in this way we reach $\\gcd({a}, {b}) = \\boxed{{{g}}}$."}
    if kind == 3:
        base, height = rng.randrange(2, 20), rng.randrange(2, 20)
        area = base * height / 2
        shown = f"{area:g}" if area == int(area) else f"\\frac{{{base * height}}}{{2}}"
        return {"problem": f"A right triangle has legs of length ${base}$ and ${height}$. What is its "
                           "area, in square units?", "level": level, "type": "Geometry",
                "solution": f"The area of a right triangle is half the product of its legs, so the "
                            f"area is $\\frac{{1}}{{2}} \\cdot {base} \\cdot {height} = \\boxed{{{shown}}}$."}
    if kind == 4:
        first, d, n = rng.randrange(1, 10), rng.randrange(2, 7), rng.randrange(5, 30)
        last = first + (n - 1) * d
        total = n * (first + last) // 2
        return {"problem": f"What is the sum of the arithmetic series ${first} + {first + d} + "
                           f"{first + 2 * d} + \\cdots + {last}$?", "level": level,
                "type": "Algebra",
                "solution": f"The common difference is ${d}$, so there are $\\frac{{{last} - {first}}}"
                            f"{{{d}}} + 1 = {n}$ terms. The sum is $\\frac{{{n}({first} + {last})}}{{2}} "
                            f"= \\boxed{{{total}}}$."}
    a, e, m = rng.randrange(2, 10), rng.randrange(3, 12), rng.choice([5, 7, 9, 11, 13])
    return {"problem": f"What is the remainder when ${a}^{{{e}}}$ is divided by ${m}$?", "level": level,
            "type": "Number Theory",
            "solution": f"We compute powers of ${a}$ modulo ${m}$ until they repeat. Reducing the "
                        f"exponent along the cycle gives ${a}^{{{e}}} \\equiv {pow(a, e, m)} "
                        f"\\pmod{{{m}}}$, so the remainder is $\\boxed{{{pow(a, e, m)}}}$."}


# --- conala (curated): {question_id, intent, rewritten_intent (or null), snippet} --------

_VARS = ["lst", "my_list", "data", "items", "values", "numbers", "words", "a", "x", "L"]
_DICTS = ["d", "my_dict", "counts", "config", "scores", "mapping"]
_CONALA = [  # (intent phrasings, rewritten_intent, snippet); {v} list, {d} dict, {s} literal
    (["How to convert a list of strings to integers", "Convert all strings in a list to int"],
     "convert list of strings `{v}` to a list of integers", "[int(x) for x in {v}]"),
    (["Reverse a string", "How do I reverse a string"],
     "reverse string '{s}'", "'{s}'[::-1]"),
    (["How do I sort a dictionary by value", "Sort a dict by its values in descending order"],
     "sort dictionary `{d}` by value in descending order",
     "sorted({d}.items(), key=lambda kv: kv[1], reverse=True)"),
    (["Remove duplicates from a list while keeping order", "How to uniquify a list and preserve order"],
     "remove duplicate elements from list `{v}` keeping their order", "list(dict.fromkeys({v}))"),
    (["Check if a key exists in a dictionary", "How to test whether a dict has a key"],
     "check if key '{s}' exists in dictionary `{d}`", "('{s}' in {d})"),
    (["Split a string by a delimiter", "How to split a string on commas"],
     "split string `{v}` on delimiter ','", "{v}.split(',')"),
    (["Flatten a list of lists", "Making a flat list out of a list of lists"],
     "flatten list of lists `{v}`", "[item for sublist in {v} for item in sublist]"),
    (["Get the index of the maximum value in a list", "Find position of the largest element of a list"],
     "get the index of the maximum element in list `{v}`", "{v}.index(max({v}))"),
]
_WORDS = ["foo", "bar", "hello", "python", "stack", "overflow", "key1", "name", "abc", "world"]


def _conala_row(rng: random.Random, k: int) -> dict[str, Any]:
    intents, rewritten, snippet = _CONALA[k % len(_CONALA)]
    slots = {"v": _pick(rng, _VARS), "d": _pick(rng, _DICTS), "s": _pick(rng, _WORDS)}
    intent = _pick(rng, intents) + rng.choice(["?", " in Python?", " in Python 3", "?", " - Python"])
    return {"question_id": 1_000_000 + k * 997 + rng.randrange(997),
            "intent": intent,
            "rewritten_intent": None if k % 7 == 3 else rewritten.format(**slots),
            "snippet": snippet.format(**slots)}


# --- mbpp (full): {task_id, text, code, test_list, test_setup_code, challenge_test_list} --

_MBPP = [  # (text, code); {p} is a small integer parameter
    ("Write a function to find the sum of the numbers in a list that are divisible by {p}.",
     "def sum_div(nums):\r\n  return sum(x for x in nums if x % {p} == 0)", "list"),
    ("Write a python function to count the occurrences of the digit {p} in a list of numbers.",
     "def count_digit(nums):\r\n  count = 0\r\n  for n in nums:\r\n    count += str(n).count('{p}')\r\n  return count", "list"),
    ("Write a function to raise every element of a list to the power {p}.",
     "def power_list(nums):\r\n  result = list(map(lambda x: x ** {p}, nums))\r\n  return result", "list"),
    ("Write a function to check whether the given number is a multiple of {p} or not.",
     "def is_multiple(n):\r\n  if n % {p} == 0:\r\n    return True\r\n  else:\r\n    return False", "int"),
    ("Write a function to remove all the words with length less than {p} from a given string.",
     "def remove_short(text):\r\n  return ' '.join(w for w in text.split() if len(w) >= {p})", "str"),
    ("Write a python function to find the sum of the first n natural numbers raised to the power {p}.",
     "def power_sum(n):\r\n  total = 0\r\n  for i in range(1, n + 1):\r\n    total += i ** {p}\r\n  return total", "int"),
]
_SENTENCES = ["the quick brown fox jumps over the lazy dog", "a big cat sat on a warm mat",
              "python is a great language to learn", "we go to the sea in june",
              "it is a long way to the top"]
_MBPP_CACHE: dict[str, Callable[..., Any]] = {}


def _mbpp_function(code: str) -> Callable[..., Any]:
    if code not in _MBPP_CACHE:
        namespace: dict[str, Any] = {}
        exec(compile(code.replace("\r\n", "\n"), "<mbpp>", "exec"), namespace)  # our own templates
        _MBPP_CACHE[code] = next(v for k, v in namespace.items() if not k.startswith("__"))
    return _MBPP_CACHE[code]


def _mbpp_row(rng: random.Random, k: int) -> dict[str, Any]:
    text, code, arg = _MBPP[k % len(_MBPP)]
    p = rng.randrange(2, 10)
    text, code = text.format(p=p), code.format(p=p)
    fn = _mbpp_function(code)
    tests = []
    for _ in range(3):
        if arg == "list":
            value: Any = [rng.randrange(1, 60) for _ in range(rng.randrange(3, 7))]
        elif arg == "int":
            value = rng.randrange(1, 12) * rng.choice([1, p])
        else:
            value = _pick(rng, _SENTENCES)
        name = code.split("(")[0].removeprefix("def ")
        tests.append(f"assert {name}({value!r}) == {fn(value)!r}")
    return {"task_id": 11 + k, "text": text, "code": code, "test_list": tests,
            "test_setup_code": "", "challenge_test_list": []}


# --- code_contests: {name, description, public_tests, solutions, difficulty, source} ------
# Enums as in deepmind/code_contests: language 1=PYTHON (2), 2=CPP, 3=PYTHON3, 4=JAVA;
# source 1=CODECHEF, 2=CODEFORCES, 5=ATCODER; difficulty 1-3 EASY..HARD, 7+ = Codeforces A, B, ...

_HEROES = ["Polycarp", "Monocarp", "Vasya", "Alice", "Chef", "Petya", "Takahashi", "Bob"]
_CC = [  # (title, statement, input spec, output spec, solve(list of ints) -> str, py3, py2, cpp)
    ("Array Sum", "{h} has an array of n integers and wants to know the sum of its elements.",
     "The first line contains one integer n (1 ≤ n ≤ {m}). The second line contains n integers a_1, a_2, ..., a_n (1 ≤ a_i ≤ 1000).",
     "Print one integer — the sum of the array.", lambda a: str(sum(a)),
     "n = int(input())\nprint(sum(map(int, input().split())))\n",
     "n = int(raw_input())\nprint sum(map(int, raw_input().split()))\n",
     "#include <bits/stdc++.h>\nusing namespace std;\nint main() {\n    int n; long long s = 0;\n    cin >> n;\n    for (int i = 0; i < n; i++) { long long x; cin >> x; s += x; }\n    cout << s << endl;\n}\n"),
    ("Even Count", "{h} likes even numbers. Count how many elements of the array are even.",
     "The first line contains one integer n (1 ≤ n ≤ {m}). The second line contains n integers a_1, ..., a_n (1 ≤ a_i ≤ 10^9).",
     "Print the number of even elements.", lambda a: str(sum(x % 2 == 0 for x in a)),
     "n = int(input())\na = list(map(int, input().split()))\nprint(sum(1 for x in a if x % 2 == 0))\n",
     "n = input()\na = map(int, raw_input().split())\nprint len([x for x in a if x % 2 == 0])\n",
     "#include <bits/stdc++.h>\nusing namespace std;\nint main() {\n    int n, c = 0;\n    cin >> n;\n    for (int i = 0; i < n; i++) { long long x; cin >> x; if (x % 2 == 0) c++; }\n    cout << c << endl;\n}\n"),
    ("Spread", "{h} measured n temperatures and wants the difference between the warmest and the coldest one.",
     "The first line contains one integer n (2 ≤ n ≤ {m}). The second line contains n integers t_1, ..., t_n (1 ≤ t_i ≤ 100).",
     "Print max(t) - min(t).", lambda a: str(max(a) - min(a)),
     "n = int(input())\nt = list(map(int, input().split()))\nprint(max(t) - min(t))\n",
     "n = input()\nt = map(int, raw_input().split())\nprint max(t) - min(t)\n",
     "#include <bits/stdc++.h>\nusing namespace std;\nint main() {\n    int n; cin >> n;\n    vector<int> t(n);\n    for (auto &x : t) cin >> x;\n    cout << *max_element(t.begin(), t.end()) - *min_element(t.begin(), t.end()) << endl;\n}\n"),
    ("Staircase", "{h} climbs a staircase and writes down the height of every step. Is the sequence strictly increasing?",
     "The first line contains one integer n (1 ≤ n ≤ {m}). The second line contains n integers h_1, ..., h_n (1 ≤ h_i ≤ 10^6).",
     "Print \"YES\" if the sequence is strictly increasing, otherwise print \"NO\".",
     lambda a: "YES" if all(x < y for x, y in zip(a, a[1:], strict=False)) else "NO",
     "n = int(input())\nh = list(map(int, input().split()))\nprint(\"YES\" if all(x < y for x, y in zip(h, h[1:])) else \"NO\")\n",
     "n = input()\nh = map(int, raw_input().split())\nprint \"YES\" if all(x < y for x, y in zip(h, h[1:])) else \"NO\"\n",
     "#include <bits/stdc++.h>\nusing namespace std;\nint main() {\n    int n; cin >> n;\n    vector<int> h(n);\n    for (auto &x : h) cin >> x;\n    bool ok = true;\n    for (int i = 1; i < n; i++) if (h[i] <= h[i - 1]) ok = false;\n    cout << (ok ? \"YES\" : \"NO\") << endl;\n}\n"),
]
_TITLE_WORDS = ["", "Easy Version", "Again", "and Candies", "on a Tree", "Strikes Back"]
_JAVA = ("import java.util.*;\n\npublic class Main {\n    public static void main(String[] args) {\n"
         "        Scanner in = new Scanner(System.in);\n        int n = in.nextInt();\n"
         "        // reads the array and prints the answer\n    }\n}\n")


def _code_contests_row(rng: random.Random, k: int) -> dict[str, Any]:
    title, story, spec_in, spec_out, solve, py3, py2, cpp = _CC[k % len(_CC)]
    hero, limit = _pick(rng, _HEROES), rng.choice(["100", "1000", "2 ⋅ 10^5", "10^5"])
    suffix = _pick(rng, _TITLE_WORDS)
    title = f"{title} ({suffix})" if suffix.endswith("Version") else f"{title} {suffix}".strip()
    tests_in, tests_out = [], []
    for _ in range(rng.randrange(1, 3)):
        arr = [rng.randrange(1, 50) for _ in range(rng.randrange(2, 7))]
        if title.startswith("Staircase") and rng.random() < 0.5:
            arr = sorted(set(arr))
        tests_in.append(f"{len(arr)}\n{' '.join(map(str, arr))}\n")
        tests_out.append(solve(arr) + "\n")
    examples = "\n\n".join(f"Input\n\n{i}\n\nOutput\n\n{o}" for i, o in zip(tests_in, tests_out, strict=True))
    description = (f"{story.format(h=hero)}\n\nInput\n\n{spec_in.format(m=limit)}\n\nOutput\n\n"
                   f"{spec_out}\n\nExample{'s' if len(tests_in) > 1 else ''}\n\n{examples}")
    source = rng.choice([2, 2, 2, 1, 5])
    if source == 2:
        letter = "ABCDEF"[rng.randrange(6)]
        name, difficulty = f"{1100 + k * 3 + rng.randrange(3)}_{letter}. {title}", 7 + "ABCDEF".index(letter)
    elif source == 5:
        name, difficulty = f"p{3000 + k:05d} AtCoder Beginner Contest {100 + k % 150} - {title}", 0
    else:
        name, difficulty = f"{''.join(w[0] for w in title.split()).upper()}{k:03d}", rng.randrange(1, 4)
    if k % 8 == 5:  # a few problems were solved in C++ only (and Java)
        languages, solutions = [2, 4] if rng.random() < 0.5 else [2], [cpp, _JAVA]
    else:
        languages, solutions = [2, 3], [cpp, py3]
        if rng.random() < 0.4:
            languages, solutions = [1, *languages], [py2, *solutions]
    return {"name": name, "description": description,
            "public_tests": {"input": tests_in, "output": tests_out},
            "solutions": {"language": languages, "solution": solutions[: len(languages)]},
            "difficulty": difficulty, "source": source}


# --- drrepair: {id, code_with_error, error_message, fixed_code} (DeepFix-style C programs) -

_C_PROGRAMS = [
    ["#include <stdio.h>", "int main() {", "    int n, i, {x}, {s} = 0;", "    scanf(\"%d\", &n);",
     "    for (i = 0; i < n; i++) {", "        scanf(\"%d\", &{x});", "        {s} += {x};", "    }",
     "    printf(\"%d\\n\", {s});", "    return 0;", "}"],
    ["#include <stdio.h>", "int main() {", "    int n, i, {x}, {s};", "    scanf(\"%d\", &n);",
     "    scanf(\"%d\", &{s});", "    for (i = 1; i < n; i++) {", "        scanf(\"%d\", &{x});",
     "        if ({x} > {s})", "            {s} = {x};", "    }", "    printf(\"%d\\n\", {s});",
     "    return 0;", "}"],
    ["#include <stdio.h>", "int main() {", "    int {x}, i;", "    long long {s} = 1;",
     "    scanf(\"%d\", &{x});", "    for (i = 2; i <= {x}; i++)", "        {s} = {s} * i;",
     "    printf(\"%lld\\n\", {s});", "    return 0;", "}"],
    ["#include <stdio.h>", "int main() {", "    int {x}, {s} = 0;", "    scanf(\"%d\", &{x});",
     "    while ({x} > 0) {", "        {s} = {s} * 10 + {x} % 10;", "        {x} /= 10;", "    }",
     "    printf(\"%d\\n\", {s});", "    return 0;", "}"],
]
_C_NAMES = [("x", "sum"), ("a", "total"), ("num", "res"), ("val", "ans"), ("t", "acc"),
            ("k", "best"), ("m", "out"), ("b", "result")]


def _first_token(line: str) -> str:
    stripped = line.strip()
    for i, ch in enumerate(stripped):
        if not (ch.isalnum() or ch == "_"):
            return stripped[: max(i, 1)]
    return stripped


def _drrepair_row(rng: random.Random, k: int) -> dict[str, Any]:
    program = k % len(_C_PROGRAMS)
    x, s = _pick(rng, _C_NAMES)
    fixed = [line.replace("{x}", x).replace("{s}", s) for line in _C_PROGRAMS[program]]
    broken = list(fixed)
    kind = rng.randrange(3)
    header = "prog.c: In function 'main':\n"
    if kind == 0:  # a missing semicolon
        candidates = [i for i, line in enumerate(fixed[:-2]) if line.endswith(";") and i > 2]
        i = _pick(rng, candidates)
        broken[i] = fixed[i][:-1]
        message = (f"{header}prog.c:{i + 1}:{len(broken[i]) + 1}: error: expected ';' before "
                   f"'{_first_token(fixed[i + 1])}'")
    elif kind == 1:  # a misspelled (undeclared) variable
        word = re.compile(rf"\b{s}\b")
        i = _pick(rng, [i for i, line in enumerate(fixed) if i > 3 and word.search(line)])
        typo = rng.choice([s + "1", s.capitalize(), s[:-1] if len(s) > 2 else s + s])
        col = word.search(fixed[i]).start()
        broken[i] = fixed[i][:col] + typo + fixed[i][col + len(s):]
        message = (f"{header}prog.c:{i + 1}:{col + 1}: error: '{typo}' undeclared (first use in "
                   f"this function)\nprog.c:{i + 1}:{col + 1}: note: each undeclared identifier is "
                   "reported only once for each function it appears in")
    else:  # the closing brace of main is missing
        broken = fixed[:-1]
        message = (f"{header}prog.c:{len(broken)}:{len(broken[-1]) + 1}: error: expected "
                   "declaration or statement at end of input")
    return {"id": f"prog{100 + program * 37 + rng.randrange(37)}-{k:05d}",
            "code_with_error": "\n".join(broken) + "\n", "error_message": message,
            "fixed_code": "\n".join(fixed) + "\n"}


# --- sharegpt: {id, conversations: [{from, value}], model}, answers as ChatGPT HTML --------

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SG_CODE = {  # task -> (code, explanation)
    "checks whether a string is a palindrome": (
        "def is_palindrome(text):\n    cleaned = \"\".join(ch.lower() for ch in text if ch.isalnum())\n    return cleaned == cleaned[::-1]\n",
        "It keeps only letters and digits, lowercases them and compares the result with its reverse."),
    "counts how often each word appears in a text": (
        "from collections import Counter\n\ndef word_counts(text):\n    return Counter(text.lower().split())\n",
        "Counter does the counting for you; most_common(5) gives the five most frequent words."),
    "reads a CSV file and returns the average of one column": (
        "import csv\n\ndef column_average(path, column):\n    with open(path, newline=\"\") as f:\n        values = [float(row[column]) for row in csv.DictReader(f)]\n    return sum(values) / len(values) if values else 0.0\n",
        "DictReader gives you each row as a dictionary, so you can pick the column by its header."),
    "returns the n-th Fibonacci number": (
        "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
        "The loop keeps only the last two numbers, so it runs in linear time and constant memory."),
    "removes empty lines from a file": (
        "def strip_empty_lines(path):\n    with open(path) as f:\n        lines = [line for line in f if line.strip()]\n    with open(path, \"w\") as f:\n        f.writelines(lines)\n",
        "Lines that contain only whitespace count as empty, because line.strip() returns an empty string."),
}
_SG_GOALS = {
    "learn a new language faster": ["Practice a little every day instead of a lot once a week.",
                                    "Talk with native speakers as early as possible.",
                                    "Watch shows with subtitles in the language you are learning."],
    "save money on groceries": ["Plan your meals for the week and write a shopping list.",
                                "Buy store brands and seasonal vegetables.",
                                "Avoid shopping when you are hungry."],
    "prepare for a job interview": ["Research the company and its products.",
                                    "Practice answers to common questions out loud.",
                                    "Prepare two or three questions for the interviewer."],
    "get better at public speaking": ["Rehearse your talk several times in front of a friend.",
                                      "Slow down and pause between your main points.",
                                      "Focus on one friendly face in the audience."],
    "keep my houseplants alive": ["Check the soil with your finger before watering.",
                                  "Put each plant where it gets the right amount of light.",
                                  "Use pots with drainage holes."],
}
_SG_EMAILS = ["my landlord asking to fix the heating", "my manager asking for a day off next Friday",
              "a customer apologizing for a late delivery", "my team announcing the new meeting time",
              "a professor asking for an extension on my essay"]
_SG_FOLLOW = [("Thanks! Can you make it a bit shorter?", "Sure, here is a shorter version that keeps the main points."),
              ("Can you explain that in simpler words?", "Of course. In short, it does one small job and does it the simple way."),
              ("Great, can you give me one more example?", "Here is another example that follows the same idea with different values."),
              ("That helps a lot, thank you.", "You're welcome! Let me know if there is anything else I can help with.")]


def _sharegpt_id(k: int) -> str:
    x, out = (k * 2654435761 + 123456789) % 62**7, []
    for _ in range(7):
        x, r = divmod(x, 62)
        out.append(_B62[r])
    return "".join(out)


def _sharegpt_row(rng: random.Random, k: int) -> dict[str, Any]:
    kind = k % 3
    please = rng.choice(["", " Please keep it simple.", " I am a beginner.", " Thanks in advance!"])
    if kind == 0:
        task = _pick(rng, sorted(_SG_CODE))
        code, explanation = _SG_CODE[task]
        lead = rng.choice(["Can you write a Python function that", "Write a Python function that",
                           "I need a Python function that"])
        human = f"{lead} {task}.{please}"
        answer = PROSE.format(f"<p>Sure! Here is a function that {html.escape(task)}:</p>"
                              + PRE.format(lang="python", code=html.escape(code, quote=False))
                              + f"<p>{html.escape(explanation)}</p>")
    elif kind == 1:
        goal = _pick(rng, sorted(_SG_GOALS))
        lead = rng.choice(["What are some good ways to", "Give me practical tips to",
                           "What is the best way to"])
        human = f"{lead} {goal}?{please}"
        tips = "".join(f"<li><p>{html.escape(t)}</p></li>" for t in rng.sample(_SG_GOALS[goal], 3))
        answer = PROSE.format(f"<p>Here are a few ideas that work well:</p><ol>{tips}</ol>"
                              "<p>Small, regular steps usually matter more than big plans.</p>")
    else:
        who = _pick(rng, _SG_EMAILS)
        tone = rng.choice(["short", "polite", "friendly", "formal"])
        human = f"Write a {tone} email to {who}.{please}"
        answer = _p("Subject: A quick request", "Hello,",
                    f"I am writing to you about the following: {who.split(' ', 2)[-1]}. I would be "
                    "very grateful if we could find a solution soon.",
                    "Thank you for your time and help.", "Best regards")
    conversations = [{"from": "human", "value": human}, {"from": "gpt", "value": answer}]
    turns = rng.choice([2, 2, 4, 4, 3])
    if turns > 2:
        question, reply = _pick(rng, _SG_FOLLOW)
        conversations.append({"from": "human", "value": question})
        if turns == 4:
            conversations.append({"from": "gpt", "value": _p(reply)})
    return {"id": _sharegpt_id(k), "conversations": conversations, "model": "Model: GPT-4"}


# --- streaming, uniqueness, files ---------------------------------------------------------

_MAKERS: dict[str, Callable[[random.Random, int], dict[str, Any]]] = {
    "alpaca": _alpaca_row, "flan": _flan_row, "gsm8k": _gsm8k_row, "aqua_rat": _aqua_rat_row,
    "competition_math": _competition_math_row, "conala": _conala_row, "mbpp": _mbpp_row,
    "code_contests": _code_contests_row, "drrepair": _drrepair_row, "sharegpt": _sharegpt_row,
}
_SEEN_LIMIT = 20_000  # exact uniqueness checks stop here; later rows get an index appended
_RETRIES = 30


def _query(dataset: str, row: dict[str, Any]) -> str:
    """The text a user-query dedup would compare for this row."""
    if dataset == "alpaca":
        return row["instruction"] + "\x1f" + row["input"]
    if dataset == "flan":
        return row["inputs"]
    if dataset in ("gsm8k", "aqua_rat"):
        return row["question"]
    if dataset == "competition_math":
        return row["problem"]
    if dataset == "conala":
        return row["rewritten_intent"] or row["intent"]
    if dataset == "mbpp":
        return row["text"]
    if dataset == "code_contests":
        return row["description"]
    if dataset == "drrepair":
        return row["error_message"] + "\x1f" + row["code_with_error"]
    return row["conversations"][0]["value"]


def _vary(dataset: str, row: dict[str, Any], i: int) -> None:
    """Make a repeated query distinct by appending the row's index."""
    tag = f" (#{i})"
    if dataset == "alpaca":
        row["instruction"] = row["instruction"].rstrip(".") + tag + "."
    elif dataset == "flan":
        row["inputs"] = row["inputs"] + tag
    elif dataset in ("gsm8k", "aqua_rat"):
        row["question"] += tag
    elif dataset == "competition_math":
        row["problem"] += tag
    elif dataset == "conala":
        row["intent"] += tag
        if row["rewritten_intent"] is not None:
            row["rewritten_intent"] += tag
    elif dataset == "mbpp":
        row["text"] = row["text"].rstrip(".") + tag + "."
    elif dataset == "code_contests":
        row["description"] = f"Problem #{i}.\n\n" + row["description"]
    elif dataset == "drrepair":
        row["code_with_error"] = f"/* submission {i} */\n" + row["code_with_error"]
        row["fixed_code"] = f"/* submission {i} */\n" + row["fixed_code"]
    else:
        row["conversations"][0]["value"] += tag


def generate(dataset: str, n: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """n rows of `dataset` in its real format; same (dataset, n, seed) -> same rows.

    The planted rows (see PLANTED) sit at seeded positions among the first rows when n is at
    least twice their number. Queries are distinct among generated rows: while they can be
    tracked (the first 20,000) a repeat is redrawn, then an index is appended.
    """
    if dataset not in _MAKERS:
        raise KeyError(f"unknown dataset {dataset!r}; one of {sorted(_MAKERS)}")
    rng = random.Random(f"selfee-samples:{dataset}:{seed}")
    make = _MAKERS[dataset]
    planted = _PLANTED_ROWS.get(dataset, []) if n >= 2 * len(_PLANTED_ROWS.get(dataset, [])) else []
    window = min(n, FILE_ROWS[dataset])
    slots = dict(zip(sorted(rng.sample(range(window), len(planted))), planted, strict=True))
    seen = {_query(dataset, row) for row in planted}
    made = 0
    for i in range(n):
        if i in slots:
            yield copy.deepcopy(slots[i])
            continue
        row = make(rng, made)
        # Redraw repeats patiently in the shipped files' range; past it the template pool is
        # mostly used up, so vary the text soon instead (keeps large n fast).
        tries, budget = 0, _RETRIES if i < 4 * FILE_ROWS[dataset] else 2
        while tries < budget and len(seen) < _SEEN_LIMIT and _query(dataset, row) in seen:
            row, tries = make(rng, made), tries + 1
        if len(seen) >= _SEEN_LIMIT or _query(dataset, row) in seen:
            _vary(dataset, row, i)
        if len(seen) < _SEEN_LIMIT:
            seen.add(_query(dataset, row))
        made += 1
        yield row


def write_dataset(dataset: str, out_dir: Path, n: int | None = None, seed: int = 0) -> Path:
    """Write one sample file the way its real dataset ships (JSON list or JSON lines)."""
    file_name = DATASETS[dataset][0]
    rows = list(generate(dataset, FILE_ROWS[dataset] if n is None else n, seed))
    if dataset == "alpaca":  # alpaca_data.json: a list, indent=4, ASCII escapes (utils.jdump)
        text = json.dumps(rows, indent=4) + "\n"
    elif file_name.endswith(".json"):  # ShareGPT dumps: a list, indent=2, UTF-8
        text = json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    else:
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / file_name
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", choices=sorted(DATASETS), help="some datasets only")
    args = parser.parse_args(argv)
    for dataset in args.only or DATASETS:
        path = write_dataset(dataset, args.out, seed=args.seed)
        print(f"{path}  {FILE_ROWS[dataset]} rows  {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
