"""Generate small samples, in their real formats, of the sets DreamerGPT and Guanaco trained on.

    python data/make_dreamer_samples.py                  # writes data/instructions/
    python data/make_dreamer_samples.py --out /tmp/x --seed 7 --rows 60

The Hub datasets cannot be downloaded here, so each file is drawn from a handful of
hand-written rows, recombined by one seeded `random.Random` per dataset: the same arguments
give the same bytes. Formats, as the released files have them:

- alpaca_gpt4_zh.json   shibing624/alpaca-zh: JSON list of {instruction, input, output}
- firefly.jsonl         YeungNLP/firefly-train-1.1M: JSON lines of {kind, input, target}
- coig.jsonl            BAAI/COIG (translated / exam / value-alignment / leetcode style)
- belle.json            BelleGroup/train_0.5M_CN: JSON list of {instruction, input, output}
- psyqa.json            PsyQA (thu-coai, released on request): JSON list of questions with
                        answers [{answer_text, has_label, labels_sequence}]
- couplets/in.txt, out.txt   wb14123/couplet-dataset: one couplet half per line, characters
                        separated by spaces, with the trailing space the real files have
- openassistant_guanaco.jsonl   timdettmers/openassistant-guanaco: {"text": "### Human: …
                        ### Assistant: …"}, turns joined with no separator, ASCII-escaped JSON
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# dataset -> (file name under the output directory, Hugging Face id; "" when not on the Hub)
DATASETS: dict[str, tuple[str, str]] = {
    "alpaca_gpt4_zh": ("alpaca_gpt4_zh.json", "shibing624/alpaca-zh"),
    "firefly": ("firefly.jsonl", "YeungNLP/firefly-train-1.1M"),
    "coig": ("coig.jsonl", "BAAI/COIG"),
    "belle": ("belle.json", "BelleGroup/train_0.5M_CN"),
    "psyqa": ("psyqa.json", ""),  # released on request: github.com/thu-coai/PsyQA
    "couplets": (
        "couplets",
        "",
    ),  # a folder with in.txt / out.txt: github.com/wb14123/couplet-dataset
    "openassistant_guanaco": ("openassistant_guanaco.jsonl", "timdettmers/openassistant-guanaco"),
}

DEFAULT_ROWS = {
    "alpaca_gpt4_zh": 40,
    "firefly": 45,
    "coig": 36,
    "belle": 40,
    "psyqa": 30,
    "couplets": 40,
    "openassistant_guanaco": 48,
}

Row = dict[str, Any]


def take(rng: random.Random, candidates: list[Row], n: int) -> list[Row]:
    """n rows: the candidates in a seeded order, repeated (as real dumps repeat) if too few."""
    pool = list(candidates)
    rng.shuffle(pool)
    out = pool[:n]
    while len(out) < n:
        out.append(dict(rng.choice(pool)))
    return out


def alpaca_row(instruction: str, inp: str, output: str) -> Row:
    return {"instruction": instruction, "input": inp, "output": output}


# --- Alpaca-GPT4 (zh): GPT-4's answers to the Alpaca prompts, translated prompts ----------

ALPACA_FIXED = [
    (
        "保持健康的三个提示。",
        "",
        "以下是保持健康的三个提示：\n\n1. 保持身体活动。每天做适量的运动，如散步、跑步或游泳，能促进心血管健康。\n\n"
        "2. 均衡饮食。多吃新鲜的蔬菜、水果和全谷物，少吃高糖、高脂肪的加工食品。\n\n"
        "3. 睡眠充足。成年人每晚需要7到9小时的睡眠，良好的睡眠有助于缓解压力、提高专注力。",
    ),
    (
        "三原色是什么？",
        "",
        "三原色通常指红色、绿色和蓝色（RGB）。它们按不同比例混合可以得到各种颜色，这是显示器和电视成像的基础。"
        "在绘画和印刷中，常用的三原色则是青色、品红色和黄色（CMY）。",
    ),
    (
        "将以下句子翻译成英文。",
        "我今天很开心，因为天气很好。",
        "I am very happy today because the weather is nice.",
    ),
    ("找出下列数字中的最大值。", "12, 45, 7, 33, 28", "这组数字中最大的是45。"),
    (
        "对以下句子进行情感分类：积极、消极或中性。",
        "这家餐厅的服务太慢了，我再也不会来了。",
        "消极。这句话表达了对餐厅服务的不满，并表示不会再来。",
    ),
    ("为一家新开的咖啡店想三个名字。", "", "1. 晨光咖啡馆\n2. 慢时光咖啡\n3. 豆香小筑"),
    ("把下面的句子改写得更正式一些。", "这事儿咱们明天再说吧。", "此事我们明日再议。"),
    (
        "解释为什么天空是蓝色的。",
        "",
        "天空呈蓝色是因为瑞利散射。太阳光进入大气层后，波长较短的蓝光比波长较长的红光更容易被空气分子散射，"
        "散射的蓝光从四面八方进入我们的眼睛，所以天空看起来是蓝色的。",
    ),
]

# (concept, what it is, what it is good for)
ALPACA_CONCEPTS = [
    (
        "机器学习",
        "机器学习是人工智能的一个分支，它让计算机从数据中学习规律，而不需要为每个任务编写明确的规则。",
        "它可以用于垃圾邮件过滤、推荐系统和图像识别等场景。",
    ),
    (
        "光合作用",
        "光合作用是植物利用光能，把二氧化碳和水转化为葡萄糖并释放氧气的过程。",
        "它为地球上几乎所有生物提供了能量和氧气。",
    ),
    (
        "通货膨胀",
        "通货膨胀是指一段时间内物价总体水平持续上涨、货币购买力下降的现象。",
        "了解通货膨胀有助于个人合理安排储蓄和投资。",
    ),
    (
        "区块链",
        "区块链是一种按时间顺序把数据区块连接起来的分布式账本，数据一旦写入就很难被篡改。",
        "它可用于数字货币、供应链溯源和电子存证。",
    ),
    (
        "温室效应",
        "温室效应是指大气中的二氧化碳等气体吸收地面辐射的热量，使地球表面温度升高的现象。",
        "适度的温室效应让地球保持适宜居住的温度。",
    ),
]
ALPACA_CONCEPT_TEMPLATES = [
    ("解释{c}的概念。", "{what}"),
    ("用简单的语言向一个十岁的孩子介绍{c}。", "{what}打个比方来说，{use}"),
    ("{c}有什么实际用途？", "{use}此外，{what}"),
]

# (topic, tips) for "给出{k}个…的建议"
ALPACA_TIPS = [
    (
        "提高学习效率",
        [
            "制定明确的学习计划",
            "每学习45分钟休息10分钟",
            "及时复习当天的内容",
            "减少手机干扰",
            "与同学讨论难点",
        ],
    ),
    (
        "节约用水",
        [
            "洗澡时缩短淋浴时间",
            "用洗菜水浇花",
            "及时修理漏水的水龙头",
            "洗衣机满载再启动",
            "刷牙时关掉水龙头",
        ],
    ),
    (
        "缓解工作压力",
        [
            "把大任务拆成小步骤",
            "每天留出运动时间",
            "学会拒绝不合理的要求",
            "和朋友倾诉",
            "保证充足睡眠",
        ],
    ),
    (
        "准备面试",
        ["提前了解公司和岗位", "准备自我介绍", "练习常见问题的回答", "穿着得体", "准时到达"],
    ),
]
NUMERALS = "零一二三四五六七八九"


def alpaca_gpt4_zh(rng: random.Random, n: int) -> Iterator[Row]:
    rows = [alpaca_row(*r) for r in ALPACA_FIXED]
    for c, what, use in ALPACA_CONCEPTS:
        for ins, out in ALPACA_CONCEPT_TEMPLATES:
            rows.append(alpaca_row(ins.format(c=c), "", out.format(what=what, use=use)))
    for topic, tips in ALPACA_TIPS:
        for k in (3, 4):
            picked = rng.sample(tips, k)
            body = "\n".join(f"{i}. {t}。" for i, t in enumerate(picked, 1))
            rows.append(
                alpaca_row(
                    f"给出{NUMERALS[k]}个{topic}的建议。",
                    "",
                    f"以下是{NUMERALS[k]}个{topic}的建议：\n\n{body}",
                )
            )
    while len(rows) < n:
        a, b = rng.randint(10, 999), rng.randint(10, 999)
        rows.append(alpaca_row("计算下面两个数的和。", f"{a} + {b}", f"{a} + {b} = {a + b}。"))
    yield from take(rng, rows, n)


# --- Firefly: {kind, input, target}; one prompt template per row, the kind kept ----------

# (上联, 下联): shared by Firefly's Couplet kind and the couplet dataset
COUPLET_PAIRS = [
    ("晚风摇树树还挺", "晨露润花花更红"),
    ("书山有路勤为径", "学海无涯苦作舟"),
    ("海纳百川有容乃大", "壁立千仞无欲则刚"),
    ("天增岁月人增寿", "春满乾坤福满门"),
    ("明月松间照", "清泉石上流"),
    ("爆竹声中辞旧岁", "梅花香里迎新春"),
    ("绿水青山皆入画", "清风明月总关情"),
    ("竹影扫阶尘不动", "月轮穿沼水无痕"),
    ("处处春光好", "家家喜事多"),
    ("琴棋书画，闲来皆可乐", "风花雪月，兴至总相宜"),
    ("一帆风顺年年好", "万事如意步步高"),
    ("山清水秀风光好", "人寿年丰喜事多"),
    ("风声雨声读书声声声入耳", "家事国事天下事事事关心"),
    ("春回大地千山秀", "日照神州万木荣"),
    ("事能知足心常惬", "人到无求品自高"),
    ("宠辱不惊，看庭前花开花落", "去留无意，望天上云卷云舒"),
    ("和顺一门有百福", "平安二字值千金"),
    ("室雅何须大", "花香不在多"),
    ("一年四季春常在", "万紫千红花永开"),
    ("墨海泛舟千里远", "书山寻路万重深"),
]

# (title, theme, form, poem)
POEMS = [
    ("春雨", "春天的雨", "五言绝句", "细雨润无声，新芽破土生。\n檐前听点滴，一夜满城青。"),
    (
        "秋夜",
        "秋天的夜晚",
        "七言绝句",
        "凉风吹叶满空庭，独倚栏杆数晚星。\n远处谁家砧杵响，一轮明月照窗棂。",
    ),
    ("思乡", "思念家乡", "五言绝句", "孤灯照客影，千里梦难成。\n遥想门前柳，依依月下生。"),
    (
        "江南",
        "江南的风景",
        "七言绝句",
        "小桥流水绕人家，烟雨楼台映晚霞。\n最是一年春好处，满城飞絮伴桃花。",
    ),
    ("登高", "登山远望", "五言绝句", "拾级上青峰，云开万壑松。\n回头来路远，天地一声钟。"),
]
POEM_TEMPLATES = [
    "以《{title}》为题，写一首{form}。",
    "创作一首{form}，题目为{title}。",
    "帮我写一首关于{theme}的古诗，体裁为{form}。",
]

TRANSLATION_PAIRS = [
    ("今天的会议推迟到下午三点。", "Today's meeting has been postponed to 3 p.m."),
    ("读书使人进步。", "Reading makes people progress."),
    ("这座城市的夜景非常美丽。", "The night view of this city is very beautiful."),
    ("请把门关上，外面风很大。", "Please close the door; it is very windy outside."),
    ("他每天早上六点起床跑步。", "He gets up at six every morning to go running."),
    ("保护环境是每个人的责任。", "Protecting the environment is everyone's responsibility."),
]

# (review, positive?)
REVIEWS = [
    ("物流很快，包装完好，宝贝和描述的一模一样。", True),
    ("用了两天就坏了，客服也不理人，太失望了。", False),
    ("酒店位置方便，房间干净，早餐种类丰富。", True),
    ("电影节奏拖沓，剧情老套，看得我直打瞌睡。", False),
    ("老师讲得很清楚，孩子说很喜欢这门课。", True),
    ("菜量少还贵，服务员态度也很冷淡。", False),
]

# (text, {entity type: [names]}) — an empty dict means no entity, as in Firefly
NER_TEXTS = [
    (
        "张伟上周从北京出发，到浙江大学参加学术会议。",
        {"人名": ["张伟"], "地名": ["北京"], "组织机构": ["浙江大学"]},
    ),
    (
        "李娜在武汉体育中心为家乡球迷献上了一场精彩的表演。",
        {"人名": ["李娜"], "地名": ["武汉"], "组织机构": ["武汉体育中心"]},
    ),
    ("如今两国都在加快经济发展，人民生活不断改善。", {}),
    (
        "新华社记者王强报道，上海今年新增绿地面积超过千公顷。",
        {"人名": ["王强"], "地名": ["上海"], "组织机构": ["新华社"]},
    ),
]

# (article, headline)
SUMMARY_TEXTS = [
    (
        "近日，多地气象台发布高温预警，部分地区最高气温将超过40摄氏度。专家提醒市民减少午后外出，注意防暑降温，"
        "老人和儿童尤其要多补充水分。",
        "多地发布高温预警 专家提醒注意防暑",
    ),
    (
        "某市图书馆推出“24小时自助借阅”服务，读者凭身份证即可在夜间借还图书。开放一个月以来，夜间借阅量已超过五千册。",
        "图书馆推出24小时自助借阅 夜间借阅量超五千册",
    ),
    (
        "今年春运期间，铁路部门共增开临时列车三百余列，并在主要车站增设爱心通道，方便老人和残障旅客出行。",
        "春运铁路增开临客三百余列 主要车站设爱心通道",
    ),
]


def _ner_target(entities: dict[str, list[str]]) -> str:
    if not entities:
        return "不存在实体"
    return "；".join(f"{kind}：{'，'.join(names)}" for kind, names in entities.items())


def firefly_candidates() -> dict[str, list[Row]]:
    """Every (kind, input, target) the pools make; inputs are distinct within the file."""
    out: dict[str, list[Row]] = {}
    out["Couplet"] = [
        row
        for up, down in COUPLET_PAIRS
        for row in (
            {"input": f"根据上联给出下联：{up}", "target": f"下联：{down}"},
            {"input": f"对联，上联：{up}\n下联：", "target": down},
            {"input": f"我出上联，你来对下联：{up}", "target": f"下联：{down}"},
        )
    ]
    out["Poetry"] = [
        {"input": t.format(title=title, theme=theme, form=form), "target": poem}
        for title, theme, form, poem in POEMS
        for t in POEM_TEMPLATES
    ]
    out["Translation"] = [
        row
        for zh, en in TRANSLATION_PAIRS
        for row in (
            {"input": f"将下面句子翻译成英文：\n{zh}", "target": en},
            {"input": f"翻译成中文：\n{en}", "target": zh},
            {"input": f"把这句话译成英文：{zh}", "target": en},
        )
    ]
    out["SentimentAnalyze"] = [
        row
        for text, good in REVIEWS
        for row in (
            {
                "input": f"判断下面这条评论的情感倾向：\n{text}\n选项：积极，消极",
                "target": "积极" if good else "消极",
            },
            {
                "input": f"这句话表达的情绪是正面还是负面？\n{text}",
                "target": "正面" if good else "负面",
            },
        )
    ]
    out["NER"] = [
        row
        for text, ents in NER_TEXTS
        for row in (
            {"input": f"下文中存在哪些实体：\n{text}", "target": _ner_target(ents)},
            {
                "input": f"找出下面句子中的人名、地名和组织机构：\n{text}",
                "target": _ner_target(ents),
            },
        )
    ]
    out["Summary"] = [
        row
        for text, title in SUMMARY_TEXTS
        for row in (
            {"input": f"{text}\n输出摘要：", "target": title},
            {"input": f"为以下新闻生成一个标题：\n{text}", "target": title},
        )
    ]
    return out


# share of each kind, most frequent first (Firefly's kinds are far from balanced)
FIREFLY_WEIGHTS = {
    "Couplet": 14,
    "Poetry": 10,
    "Translation": 8,
    "SentimentAnalyze": 6,
    "NER": 4,
    "Summary": 3,
}


def firefly_counts(n: int) -> dict[str, int]:
    total = sum(FIREFLY_WEIGHTS.values())
    counts = {k: n * w // total for k, w in FIREFLY_WEIGHTS.items()}
    for k in list(FIREFLY_WEIGHTS)[: n - sum(counts.values())]:
        counts[k] += 1
    return counts


def firefly(rng: random.Random, n: int) -> Iterator[Row]:
    rows: list[Row] = []
    counts = firefly_counts(n)
    for kind, cands in firefly_candidates().items():
        picked = list(cands)
        rng.shuffle(picked)
        for i in range(counts[kind]):
            row = dict(picked[i % len(picked)])
            if i >= len(picked):  # more rows asked than the pool holds: keep inputs distinct
                row["input"] += f"（{i // len(picked) + 1}）"
            rows.append({"kind": kind, **row})
    rng.shuffle(rows)
    yield from rows


# --- COIG: translated instructions, exam questions, human-value alignment, leetcode ------

COIG_FIXED = [
    ("从给定的句子中找出主语。", "小猫在花园里追蝴蝶。", "小猫"),
    ("判断下面的陈述是事实还是观点。", "长城是世界上最长的城墙。", "事实"),
    ("根据给出的单词造一个句子。", "坚持", "只要坚持不懈，再难的目标也能实现。"),
    (
        "我的朋友向我借钱总是不还，我该怎么办？",
        "",
        "可以先心平气和地和朋友沟通，说明你的实际困难，约定一个还款时间。如果对方一再拖延，"
        "以后借钱时要量力而行，必要时保留借款凭证，用合法的方式维护自己的权益。",
    ),
    (
        "有人让我帮忙在考试中作弊，我应该答应吗？",
        "",
        "不应该答应。考试作弊违反考试纪律，也对其他认真备考的同学不公平。你可以委婉地拒绝，"
        "并建议对方利用剩下的时间好好复习，有不懂的地方可以一起讨论。",
    ),
    (
        "请用Python实现：给定一个整数数组，返回其中两个数之和等于目标值的下标。",
        "nums = [2, 7, 11, 15], target = 9",
        "def two_sum(nums, target):\n    seen = {}\n    for i, x in enumerate(nums):\n"
        "        if target - x in seen:\n            return [seen[target - x], i]\n        seen[x] = i\n"
        "    return []\n\n# two_sum([2, 7, 11, 15], 9) -> [0, 1]",
    ),
    (
        "请用Python实现：判断一个字符串是否为回文串。",
        's = "上海自来水来自海上"',
        'def is_palindrome(s):\n    return s == s[::-1]\n\n# is_palindrome("上海自来水来自海上") -> True',
    ),
]

# (question with options, answer letter, explanation): a Chinese exam paper, answered
COIG_EXAM = [
    (
        "下列诗句中，描写春天的是（ ）\nA. 停车坐爱枫林晚\nB. 春色满园关不住\nC. 窗含西岭千秋雪\nD. 接天莲叶无穷碧",
        "B",
        "“春色满园关不住”出自叶绍翁《游园不值》，写的是春景；A写秋，C写冬，D写夏。",
    ),
    (
        "我国面积最大的省级行政区是（ ）\nA. 西藏\nB. 内蒙古\nC. 新疆\nD. 青海",
        "C",
        "新疆维吾尔自治区面积约166万平方千米，是我国面积最大的省级行政区。",
    ),
    (
        "水在标准大气压下的沸点是（ ）\nA. 90℃\nB. 100℃\nC. 110℃\nD. 120℃",
        "B",
        "在一个标准大气压下，纯水的沸点为100℃。",
    ),
]
COIG_EXAM_PROMPTS = [
    "请回答下面的选择题，并给出解析。",
    "以下是一道考试题目，请选出正确答案并说明理由。",
]


def coig(rng: random.Random, n: int) -> Iterator[Row]:
    rows = [alpaca_row(*r) for r in COIG_FIXED]
    for question, answer, why in COIG_EXAM:
        for prompt in COIG_EXAM_PROMPTS:
            rows.append(alpaca_row(prompt, question, f"答案：{answer}\n解析：{why}"))
    for zh, en in TRANSLATION_PAIRS:  # translated English instructions keep an English input
        rows.append(alpaca_row("将下面的英文句子翻译成中文。", en, zh))
    while len(rows) < n:
        a, b = rng.randint(11, 99), rng.randint(11, 99)
        rows.append(
            alpaca_row(
                "请计算下面的题目，并写出解题过程。",
                f"{a} × {b} = ？",
                f"答案：{a * b}\n解析：{a} × {b} = {a} × {b // 10 * 10} + {a} × {b % 10}"
                f" = {a * (b // 10 * 10)} + {a * (b % 10)} = {a * b}。",
            )
        )
    yield from take(rng, rows, n)


# --- BELLE 0.5M: ChatGPT self-instruct; the task sits in the instruction, input is "" ----

BELLE_FIXED = [
    (
        "写一篇关于保护环境的短文，不少于100字。",
        "环境是人类赖以生存的家园。近年来，空气污染、水资源短缺和垃圾围城等问题日益突出，提醒我们保护环境刻不容缓。"
        "保护环境要从身边小事做起：出门尽量乘坐公共交通，购物时自带环保袋，做好垃圾分类，节约每一滴水、每一度电。"
        "只要人人都行动起来，我们的天空会更蓝，河水会更清。",
    ),
    ("请列出五种常见的水果。", "苹果、香蕉、橙子、葡萄、西瓜。"),
    ("生成一个有趣的冷笑话。", "为什么数学书总是很忧郁？因为它有太多的问题。"),
    ("回答以下问题：中国的首都是哪里？\n", "中国的首都是北京。"),
    ("给出一个以“坚持”为主题的名言警句。", "锲而舍之，朽木不折；锲而不舍，金石可镂。——荀子"),
    (
        "根据以下描述，猜一个动物：\n它有长长的鼻子和大大的耳朵，是陆地上体型最大的动物。\n",
        "大象。",
    ),
    ("将下列词语按照拼音首字母排序：\n香蕉、苹果、橘子、菠萝\n", "菠萝、橘子、苹果、香蕉"),
]
BELLE_SENTENCES = [
    "明天的会议在{a}点开始，记得准时到达。",
    "这本书一共有{a}章，我已经读完了{b}章。",
    "我们班有{a}名同学，其中{b}名参加了运动会。",
]


def _plus_one(template: str, a: int, b: int) -> tuple[str, str]:
    return template.format(a=a, b=b), template.format(a=a + 1, b=b + 1)


def belle(rng: random.Random, n: int) -> Iterator[Row]:
    rows = [alpaca_row(ins, "", out) for ins, out in BELLE_FIXED]
    for zh, en in TRANSLATION_PAIRS[:4]:
        rows.append(alpaca_row(f"把这句话翻译成英文：“{zh}”", "", en))
    for text, good in REVIEWS:
        rows.append(
            alpaca_row(
                f"判断以下句子的情感是积极还是消极：\n{text}\n", "", "积极" if good else "消极"
            )
        )
    for template in BELLE_SENTENCES:
        for _ in range(3):
            before, after = _plus_one(template, rng.randint(2, 9), rng.randint(1, 9))
            rows.append(
                alpaca_row(
                    f"给定一个文字输入，将其中的所有数字加1。\n“{before}”\n", "", f"“{after}”"
                )
            )
    while len(rows) < n:  # school-math style word problems
        a, b = rng.randint(3, 30), rng.randint(2, 20)
        rows.append(
            alpaca_row(
                f"小明有{a}个苹果，妈妈又给了他{b}个，他现在一共有多少个苹果？",
                "",
                f"小明原来有{a}个苹果，妈妈又给了他{b}个，所以他现在一共有{a} + {b} = {a + b}个苹果。",
            )
        )
    yield from take(rng, rows, n)


# --- PsyQA: questions from a counselling site, long answers, some strategy-annotated -----

# (keywords, what troubles the asker, a description of the situation)
PSY_TOPICS = [
    (
        "学业,焦虑",
        "一到考试就紧张得睡不着",
        "我是一名高三学生，每次大考前一周就开始失眠，脑子里全是考砸了怎么办。爸妈对我期望很高，我不敢跟他们说。",
    ),
    (
        "恋爱,情感挽回",
        "分手半年了还是忘不了前任",
        "我们在一起三年，去年因为异地分手了。我删了所有联系方式，可还是会在深夜翻以前的照片，工作也提不起劲。",
    ),
    (
        "人际关系,宿舍",
        "总觉得室友在孤立我",
        "大学宿舍四个人，她们三个经常一起吃饭逛街，很少叫我。我试着主动过几次，可总插不进她们的话题。",
    ),
    (
        "家庭关系,原生家庭",
        "和父母一说话就吵架",
        "我今年二十五岁，在家附近工作。父母总是干涉我的穿着、交友和工作，我一反驳他们就说我不孝顺。",
    ),
    (
        "自我成长,拖延",
        "明知道该做事却一直拖延",
        "每天计划得好好的，可一坐下就忍不住刷手机，等到截止日期前才熬夜赶工，事后又特别后悔自责。",
    ),
    (
        "职场,倦怠",
        "工作三年越来越没有动力",
        "刚工作时很有热情，现在每天上班像完成任务，周日晚上就开始焦虑，也说不清自己到底想要什么。",
    ),
    (
        "社交,社交恐惧",
        "在人多的场合说话就脸红发抖",
        "开会发言或者和不熟的人吃饭，我都会心跳加速、脸红，说话结巴，事后还会反复回想自己是不是很丢人。",
    ),
    (
        "情绪,抑郁",
        "最近对什么都提不起兴趣",
        "以前喜欢画画和跑步，这两个月什么都不想做，吃饭也没胃口，周末只想躺着，但又说不出哪里不对。",
    ),
]
PSY_QUESTION_FORMS = [
    "{t}，我该怎么办？",
    "{t}，该如何调整自己？",
    "{t}，这正常吗？",
    "{t}，是不是我太脆弱了？",
]
PSY_DESCRIPTION_TAILS = [
    "希望有人能给我一些建议。",
    "真的很苦恼，谢谢大家。",
    "不知道该和谁说。",
    "",
]

# answer sentences by the helping-skill strategy PsyQA annotates them with
PSY_STRATEGIES = {
    "Restatement": [
        "听起来{t}这件事让你承受了很大的压力。",
        "从你的描述里，我感受到你现在很委屈，也很无助。",
    ],
    "Approval and Reassurance": [
        "你愿意把这些说出来，已经是很勇敢的一步。",
        "有这样的感受很正常，并不代表你不够好。",
    ],
    "Interpretation": [
        "这种状态往往和我们对自己要求太高有关，越想做好，越害怕失败。",
        "有时候情绪是在提醒我们，某些需要长期没有被看见。",
    ],
    "Direct Guidance": [
        "可以试着每天留出十分钟，把担心的事情写下来，再写下一件能马上做的小事。",
        "建议先从规律作息开始，如果情况持续两周以上，可以寻求专业心理咨询师的帮助。",
    ],
    "Information": [
        "研究表明，适度的运动能有效缓解焦虑和低落的情绪。",
        "很多人在人生转折期都会经历类似的阶段，它通常是暂时的。",
    ],
    "Self-disclosure": ["我自己也曾经有过类似的经历，那时候最有用的是找一个信任的人聊一聊。"],
}
PSY_OPENINGS = ["题主你好，", "抱抱题主。", "你好呀，"]
PSY_CLOSINGS = ["愿你早日走出困扰，加油！", "祝好。", "希望我的回答对你有帮助。"]


def psy_answer(rng: random.Random, trouble: str, labelled: bool) -> Row:
    order = [
        "Restatement",
        "Approval and Reassurance",
        "Interpretation",
        "Direct Guidance",
        "Information",
        "Self-disclosure",
    ]
    chosen = sorted(rng.sample(order, rng.randint(2, 4)), key=order.index)
    text, labels = rng.choice(PSY_OPENINGS), []
    for strategy in chosen:
        sentence = rng.choice(PSY_STRATEGIES[strategy]).format(t=trouble)
        labels.append({"start": len(text), "end": len(text) + len(sentence), "type": strategy})
        text += sentence
    text += rng.choice(PSY_CLOSINGS)
    return {
        "answer_text": text,
        "has_label": labelled,
        "labels_sequence": labels if labelled else [],
    }


def psyqa(rng: random.Random, n: int) -> Iterator[Row]:
    combos = [(topic, form) for topic in PSY_TOPICS for form in PSY_QUESTION_FORMS]
    rng.shuffle(combos)
    for i in range(n):
        (keywords, trouble, situation), form = combos[i % len(combos)]
        question = form.format(t=trouble)
        if i >= len(combos):
            question = f"{question}（再次求助）"
        answers = [
            psy_answer(rng, trouble, rng.random() < 0.3) for _ in range(rng.choice((1, 1, 2, 2, 3)))
        ]
        yield {
            "questionID": i,
            "question": question,
            "description": situation + rng.choice(PSY_DESCRIPTION_TAILS),
            "keywords": keywords,
            "answers": answers,
        }


# --- Couplets: in.txt / out.txt, one half per line, every character spaced ---------------

# parallel word pairs for new 7-character couplets: subject(2) verb(1) object(1) place(2) end(1)
COUPLET_PARTS = [
    [("春风", "瑞雪"), ("青山", "绿水"), ("红梅", "翠竹"), ("晨钟", "暮鼓"), ("花香", "鸟语")],
    [("送", "迎"), ("映", "含"), ("伴", "随"), ("传", "入")],
    [("暖", "春"), ("日", "风"), ("福", "祥"), ("梦", "心")],
    [("千家", "万户"), ("四海", "九州"), ("满院", "盈门")],
    [("乐", "欢"), ("喜", "安"), ("秀", "荣"), ("好", "新")],
]


def spaced(line: str) -> str:
    """The dataset's tokenisation: every character (punctuation too) then a space."""
    return "".join(ch + " " for ch in line)


def couplets(rng: random.Random, n: int) -> Iterator[Row]:
    pairs = [{"in": up, "out": down} for up, down in COUPLET_PAIRS]
    seen = {p["in"] for p in pairs}
    for _ in range(20 * n):  # bounded: the parts make 960 couplets; beyond that, repeats
        if len(pairs) >= n:
            break
        picks = [rng.choice(slot) for slot in COUPLET_PARTS]
        up = "".join(p[0] for p in picks)
        if up not in seen:
            seen.add(up)
            pairs.append({"in": up, "out": "".join(p[1] for p in picks)})
    # the real in.txt opens with 晚 风 摇 树 树 还 挺; the rest in a seeded order
    for pair in [pairs[0], *take(rng, pairs[1:], n - 1)][:n]:
        yield {"in": spaced(pair["in"]), "out": spaced(pair["out"])}


# --- OpenAssistant Guanaco: OASST1's best replies as "### Human: …### Assistant: …" text ---

# (language, [(human, assistant), ...]): a conversation; more exchanges make it multi-turn
OASST_CONVERSATIONS: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "en",
        [
            (
                "Can you explain what a monopsony is in economics?",
                "A monopsony is a market with a single buyer, in contrast to a monopoly, which has a single seller. "
                "In the labour market, a large employer that is the only one in a town can keep wages below what a "
                "competitive market would pay, because workers have few other options.",
            ),
            (
                "Can you give me a real-world example?",
                "A classic example is a mining company town, where the mine was the only employer. Some economists "
                "argue that large retailers in small towns today have similar power over local wages.",
            ),
        ],
    ),
    (
        "en",
        [
            (
                "What are some good ways to fall asleep faster?",
                "Here are a few things that help many people:\n\n1. Keep a regular sleep schedule, even on weekends.\n"
                "2. Avoid screens for an hour before bed.\n3. Keep your bedroom cool, dark and quiet.\n"
                "4. Skip caffeine after lunch.\n\nIf you still lie awake for more than 20 minutes, get up and do "
                "something calm until you feel sleepy.",
            )
        ],
    ),
    (
        "en",
        [
            (
                "Write a Python function that reverses a string.",
                "Here is a simple version using slicing:\n\n```python\ndef reverse_string(s: str) -> str:\n"
                '    return s[::-1]\n```\n\nFor example, `reverse_string("hello")` returns `"olleh"`.',
            ),
            (
                "How would I do it without slicing?",
                "You can build the result with `reversed` and `join`:\n\n```python\ndef reverse_string(s: str) -> str:\n"
                '    return "".join(reversed(s))\n```',
            ),
            (
                "Which one is faster?",
                "Slicing is usually a little faster because it runs entirely in C, but for normal string sizes the "
                "difference is negligible. Pick the one you find more readable.",
            ),
        ],
    ),
    (
        "en",
        [
            (
                "Why is the sky blue?",
                "Sunlight contains all colours, but as it passes through the atmosphere, the shorter blue wavelengths "
                "are scattered much more by air molecules than the longer red ones. This is called Rayleigh "
                "scattering, and it is why we see blue light coming from every direction in the sky.",
            )
        ],
    ),
    (
        "en",
        [
            (
                "I want to start running but I get tired after five minutes. Any tips?",
                "That is completely normal when you are starting out. Try alternating one minute of running with two "
                "minutes of walking, and add a little more running each week. Go slowly enough that you could still "
                "hold a conversation, and rest at least one day between runs.",
            )
        ],
    ),
    (
        "en",
        [
            (
                "What is the difference between a list and a tuple in Python?",
                "Lists are mutable, so you can add, remove or change their elements. Tuples are immutable: once "
                "created, they cannot be changed. Because of that, tuples can be used as dictionary keys and are a "
                "good fit for fixed collections such as coordinates.",
            )
        ],
    ),
    (
        "es",
        [
            (
                "¿Cuáles son los beneficios de aprender un segundo idioma?",
                "Aprender un segundo idioma mejora la memoria y la concentración, abre oportunidades laborales y te "
                "permite conocer otras culturas desde dentro. Además, algunos estudios sugieren que retrasa el "
                "deterioro cognitivo en la vejez.",
            ),
            (
                "¿Y cuál es el más fácil para un hispanohablante?",
                "Para un hispanohablante suelen resultar más fáciles el portugués y el italiano, porque comparten "
                "mucho vocabulario y gramática con el español.",
            ),
        ],
    ),
    (
        "es",
        [
            (
                "Escribe un poema corto sobre el mar.",
                "El mar respira en la orilla,\nguarda secretos de sal,\ny cada ola que se humilla\nvuelve a nacer al final.",
            )
        ],
    ),
    (
        "es",
        [
            (
                "¿Cómo puedo hacer que mis plantas de interior crezcan mejor?",
                "Colócalas cerca de una ventana con luz indirecta, riégalas solo cuando la tierra esté seca al tacto y "
                "usa macetas con agujeros de drenaje. Un poco de abono cada mes en primavera y verano también ayuda.",
            )
        ],
    ),
    (
        "ru",
        [
            (
                "Привет! Как научиться программировать с нуля?",
                "Привет! Начните с Python: у него простой синтаксис и много бесплатных курсов. Пишите код каждый день, "
                "решайте небольшие задачи и делайте собственные мини-проекты.",
            )
        ],
    ),
    (
        "de",
        [
            (
                "Was ist der Unterschied zwischen Wetter und Klima?",
                "Wetter beschreibt den Zustand der Atmosphäre an einem Ort zu einem bestimmten Zeitpunkt. Klima ist "
                "dagegen das durchschnittliche Wetter über einen langen Zeitraum, meist 30 Jahre.",
            )
        ],
    ),
    (
        "fr",
        [
            (
                "Peux-tu me donner une recette simple de crêpes ?",
                "Bien sûr ! Mélangez 250 g de farine, 4 œufs, 50 cl de lait et une pincée de sel. Laissez reposer la "
                "pâte une heure, puis faites cuire les crêpes dans une poêle chaude et légèrement beurrée.",
            )
        ],
    ),
    (
        "pt",
        [
            (
                "Qual é a capital da Austrália?",
                "A capital da Austrália é Camberra, e não Sydney, como muitas pessoas pensam.",
            )
        ],
    ),
    (
        "zh",
        [
            (
                "你能用一句话解释什么是人工智能吗？",
                "人工智能是让计算机模拟人类的学习、推理和决策等能力的技术。",
            )
        ],
    ),
]
OASST_THANKS = {
    "en": (
        "Thank you, that was helpful!",
        "You're welcome! Let me know if you have any other questions.",
    ),
    "es": ("¡Muchas gracias!", "¡De nada! Si tienes más preguntas, aquí estoy."),
}
CAPITALS = {
    "en": (
        "What is the capital of {c}?",
        "The capital of {c} is {k}.",
        [
            ("France", "Paris"),
            ("Japan", "Tokyo"),
            ("Canada", "Ottawa"),
            ("Kenya", "Nairobi"),
            ("Brazil", "Brasília"),
            ("Egypt", "Cairo"),
        ],
    ),
    "es": (
        "¿Cuál es la capital de {c}?",
        "La capital de {c} es {k}.",
        [("Perú", "Lima"), ("Chile", "Santiago"), ("Alemania", "Berlín"), ("Japón", "Tokio")],
    ),
}


def guanaco_text(exchanges: list[tuple[str, str]]) -> str:
    return "".join(f"### Human: {h.strip()}### Assistant: {a.strip()}" for h, a in exchanges)


TO_SPANISH = [
    ("Good morning", "Buenos días"),
    ("Where is the train station?", "¿Dónde está la estación de tren?"),
    ("I am hungry", "Tengo hambre"),
    ("See you tomorrow", "Hasta mañana"),
    ("How much does it cost?", "¿Cuánto cuesta?"),
    ("Nice to meet you", "Mucho gusto"),
]


def openassistant_guanaco(rng: random.Random, n: int) -> Iterator[Row]:
    texts: list[str] = []
    for lang, exchanges in OASST_CONVERSATIONS:  # one row per conversation tree, as Guanaco kept
        thanks = [OASST_THANKS[lang]] if lang in OASST_THANKS and rng.random() < 0.4 else []
        texts.append(guanaco_text([*exchanges, *thanks]))
    for ask, answer, pairs in CAPITALS.values():
        texts += [guanaco_text([(ask.format(c=c), answer.format(c=c, k=k))]) for c, k in pairs]
    texts += [
        guanaco_text([(f'How do I say "{en}" in Spanish?', f'You can say "{es}".')])
        for en, es in TO_SPANISH
    ]
    seen = set(texts)
    while len(texts) < n - 2:  # simple questions, as OASST1's prompters asked them
        a, b = rng.randint(12, 99), rng.randint(12, 99)
        if rng.random() < 0.15:
            text = guanaco_text([(f"¿Cuánto es {a} por {b}?", f"{a} por {b} es {a * b}.")])
        elif rng.random() < 0.5:
            text = guanaco_text([(f"What is {a} times {b}?", f"{a} times {b} is {a * b}.")])
        else:
            text = guanaco_text(
                [
                    (
                        f"Convert {a} degrees Celsius to Fahrenheit.",
                        f"{a} °C is {a * 9 / 5 + 32:g} °F. Multiply by 9/5, then add 32.",
                    )
                ]
            )
        if text not in seen:
            seen.add(text)
            texts.append(text)
    rows = take(rng, [{"text": t} for t in texts], max(n - 2, 1))
    if n - len(rows) >= 2 and len(rows) >= 2:  # the real file repeats some rows verbatim
        for row in rng.sample(rows, 2):
            rows.insert(rng.randint(rows.index(row) + 1, len(rows)), dict(row))
    yield from rows


# --- generate / write --------------------------------------------------------------------

GENERATORS: dict[str, Callable[[random.Random, int], Iterator[Row]]] = {
    "alpaca_gpt4_zh": alpaca_gpt4_zh,
    "firefly": firefly,
    "coig": coig,
    "belle": belle,
    "psyqa": psyqa,
    "couplets": couplets,
    "openassistant_guanaco": openassistant_guanaco,
}


def generate(dataset: str, n: int, seed: int) -> Iterator[dict]:
    """n rows of `dataset` in its real record shape; couplets yield {"in", "out"} lines."""
    if dataset not in GENERATORS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(GENERATORS)}")
    rng = random.Random(f"{dataset}:{seed}")  # str seeds are hashed stably, not per process
    yield from GENERATORS[dataset](rng, n)


def write(dataset: str, out: Path, n: int, seed: int) -> list[Path]:
    """Write one dataset the way its publisher laid it out; return the files written."""
    rows = list(generate(dataset, n, seed))
    target = out / DATASETS[dataset][0]
    if dataset == "couplets":
        target.mkdir(parents=True, exist_ok=True)
        files = []
        for side in ("in", "out"):
            path = target / f"{side}.txt"
            path.write_text("".join(r[side] + "\n" for r in rows), encoding="utf-8")
            files.append(path)
        return files
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix == ".jsonl":
        # the Guanaco file escapes non-ASCII (json.dumps defaults); the Chinese sets do not
        ascii_only = dataset == "openassistant_guanaco"
        text = "".join(json.dumps(r, ensure_ascii=ascii_only) + "\n" for r in rows)
    else:
        text = json.dumps(rows, ensure_ascii=False, indent=4 if dataset == "alpaca_gpt4_zh" else 2)
        text += "\n"
    target.write_text(text, encoding="utf-8")
    return [target]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "instructions")
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument(
        "--rows", type=int, default=None, help="rows per dataset (default: 30-48 each)"
    )
    parser.add_argument("--only", choices=sorted(GENERATORS), action="append", help="repeatable")
    args = parser.parse_args()
    for dataset in args.only or GENERATORS:
        n = args.rows or DEFAULT_ROWS[dataset]
        for path in write(dataset, args.out, n, args.seed):
            print(f"{dataset:<22} {n:>4} rows  {path.stat().st_size:>6} bytes  {path}")


if __name__ == "__main__":
    main()
