"""Synthetic survey years: landing files of every shape and fault, the frame, exact truth."""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import re
import shutil
import stat
import sys
import time
import zipfile
import zlib
from collections import Counter
from datetime import datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import xlsxwriter

from devtools.oracle import (
    AMOUNT_COLS,
    CODE_VALUE,
    COLUMNS,
    COUNT_COLS,
    COUNT_MAX,
    EMPLOYEES_MAX,
    LEVELS,
    NAME_MAX,
    TENFOLD,
    TENFOLD_FLOOR,
    Oracle,
    check_character,
    decide,
)
from pipeline.config import Settings
from pipeline.errors import SurveyError
from schemas import reference
from schemas.form import AWARD_LABELS, FORM_COLUMNS, SIZE_LABELS
from schemas.tables import MAGNITUDES
from schemas.types import CREDIT_CODE_ALPHABET, CREDIT_CODE_WEIGHTS

# ---------------------------------------------------------------------------------------------
# Form facts, taken from the schema so a renamed column cannot silently drift from the truth.
# ---------------------------------------------------------------------------------------------

REQUIRED_COLS = [c for c, m in FORM_COLUMNS.items() if m.blank == "required"]
BC_COUNTS = [c for c in COUNT_COLS if FORM_COLUMNS[c].section in ("B", "C")]
E_RULES = [f"E{i:03d}" for i in range(1, 12)]
SIZE_ZH = {v: k for k, v in SIZE_LABELS.items()}
AWARD_ZH = {v: k for k, v in AWARD_LABELS.items()}
DT_CANON = "%Y-%m-%d %H:%M:%S"

# Unit non-response, by size class: the chance of filing nothing in a year (all causes), and
# within it the share of the population that never files (drawn once from the seed). Small
# firms are the ones that do not file; a persistent core has no last year's return, so the
# pipeline meets both ratio (filed last year) and donor (never filed) imputation. At the
# population's size mix: about 6% a year, 1.8% never; two thirds of a year's non-filers filed
# the year before.
NON_FILING = {"micro": 0.09, "small": 0.05, "medium": 0.02, "large": 0.01}
NEVER_FILING = {"micro": 0.03, "small": 0.012, "medium": 0.005, "large": 0.002}
# The frame as registers export it: codes in other spellings (survey-form §6 normalises them),
# invalid codes (N402) and enterprises listed twice. Shares of the frame's enterprises.
FRAME_LOWER_SHARE, FRAME_FULLWIDTH_SHARE, FRAME_SPACED_SHARE = 0.01, 0.005, 0.005
FRAME_BAD_CODE_SHARE, FRAME_BAD_CODE_MIN = 0.0002, 2
FRAME_REPEAT_SHARE, FRAME_REPEAT_MIN = 0.0001, 1
FRAME_COLUMNS = ["credit_code", "enterprise_name", "region_code", "industry_code", "size_class"]

# Shares of the year's filers; fault_share is the caller's knob.
RESUBMIT_SHARE = 0.03
DUPLICATE_SHARE = 0.01
VARIANT_SHARE = 0.05
ONLINE_SHARE = 0.25
OUTSIDE_SHARE = 0.02

# Standards work. Rare things are rare, as in the province's published figures: all Zhejiang's
# enterprises together led 55 international and 2,819 national standards over the pilot years.
# So a year of 50,000 enterprises leads a few dozen international standards, mostly in large
# enterprises, and a few hundred national ones; group and enterprise standards are common.
# The tables give, by size class, a value at activity 1, 2 and 3 (activity 0: no standards work).
# The chance of taking part in one standard of the level or more in the year:
TAKES_PART = {
    "intl": {"large": (0.15, 0.4, 0.7), "medium": (0, 0.02, 0.08), "small": (0, 0.001, 0.02),
             "micro": (0, 0, 0)},
    "national": {"large": (0.3, 0.6, 0.8), "medium": (0.04, 0.2, 0.5),
                 "small": (0.005, 0.05, 0.3), "micro": (0.001, 0.01, 0.1)},
    "industry": {"large": (0.3, 0.6, 0.8), "medium": (0.05, 0.25, 0.5),
                 "small": (0.01, 0.08, 0.3), "micro": (0.002, 0.02, 0.1)},
    "local": {"large": (0.2, 0.4, 0.6), "medium": (0.05, 0.2, 0.4), "small": (0.01, 0.06, 0.25),
              "micro": (0.003, 0.02, 0.1)},
    "group": {"large": (0.4, 0.7, 0.9), "medium": (0.2, 0.5, 0.7), "small": (0.1, 0.3, 0.5),
              "micro": (0.04, 0.15, 0.3)},
}
# How many standards a participant works on, at activity 1, 2 and 3 (a lognormal spread; one
# at least); the chance it led some of them, and the share it led (so led <= involved, E009).
PER_PARTICIPANT = {"intl": (1.0, 1.2, 2.0), "national": (1.2, 2.0, 3.0),
                   "industry": (1.2, 2.0, 3.0), "local": (1.0, 1.5, 2.5), "group": (1.5, 3.0, 6.0)}
LEADS = {"intl": 0.4, "national": 0.4, "industry": 0.45, "local": 0.5, "group": 0.5}
LED_SHARE = 0.6
# Capacity and the rest of section B: (chance of any, by size class; how many, at activity
# 1, 2, 3). Posts in international technical bodies and registered experts are few, in large
# enterprises; members of national technical committees some hundreds.
CAPACITY = {
    "intl_tc_posts": (
        {"large": (0.02, 0.08, 0.25), "medium": (0, 0, 0.03), "small": (0, 0, 0),
         "micro": (0, 0, 0)}, (1.0, 1.0, 1.5)),
    "intl_registered_experts": (
        {"large": (0.05, 0.2, 0.5), "medium": (0, 0.02, 0.15), "small": (0, 0, 0.02),
         "micro": (0, 0, 0)}, (1.0, 1.5, 2.5)),
    "national_tc_members": (
        {"large": (0.5, 0.7, 0.9), "medium": (0.1, 0.3, 0.6), "small": (0.01, 0.1, 0.3),
         "micro": (0.002, 0.02, 0.1)}, (1.0, 1.5, 3.0)),
    "patents_in_standards": (
        {"large": (0.2, 0.4, 0.6), "medium": (0.05, 0.15, 0.4), "small": (0.01, 0.08, 0.25),
         "micro": (0.005, 0.03, 0.1)}, (1.0, 2.0, 5.0)),
    "zhejiang_made": (
        {"large": (0.1, 0.2, 0.3), "medium": (0.03, 0.08, 0.2), "small": (0.01, 0.05, 0.15),
         "micro": (0.002, 0.01, 0.05)}, (1.0, 1.0, 1.5)),
}

# ---------------------------------------------------------------------------------------------
# Vocabulary for realistic names. Pinyin is kept beside each syllable so English names agree.
# ---------------------------------------------------------------------------------------------

# fmt: off
CITIES = {  # city prefix -> (pinyin, telephone area code, weight in the population)
    "3301": ("Hangzhou", "0571", 3.0), "3302": ("Ningbo", "0574", 2.5),
    "3303": ("Wenzhou", "0577", 1.3), "3304": ("Jiaxing", "0573", 1.2),
    "3305": ("Huzhou", "0572", 1.0), "3306": ("Shaoxing", "0575", 1.3),
    "3307": ("Jinhua", "0579", 1.2), "3308": ("Quzhou", "0570", 0.6),
    "3309": ("Zhoushan", "0580", 0.5), "3310": ("Taizhou", "0576", 1.2),
    "3311": ("Lishui", "0578", 0.6),
}
# 字号 (trade names) are two syllables, one from each list.
ZIHAO_1 = list(zip("华天新金宏永恒盛瑞德振正兴东中博嘉利鑫海宇立明方万富凯通长伟", (
    "Hua Tian Xin Jin Hong Yong Heng Sheng Rui De Zhen Zheng Xing Dong Zhong Bo Jia Li Xin Hai "
    "Yu Li Ming Fang Wan Fu Kai Tong Chang Wei").split(), strict=True))
ZIHAO_2 = list(zip("达成源泰丰力信安光科远兴隆昌峰诚越宝润邦森辉杰航锐腾星晨悦川", (
    "da cheng yuan tai feng li xin an guang ke yuan xing long chang feng cheng yue bao run bang "
    "sen hui jie hang rui teng xing chen yue chuan").split(), strict=True))
DIVISION_WORDS = {
    13: ("食品", "Food"), 14: ("食品", "Food"), 15: ("酒业", "Beverage"),
    17: ("纺织", "Textile"), 18: ("服饰", "Apparel"), 19: ("皮革", "Leather"),
    20: ("木业", "Wood"), 21: ("家具", "Furniture"),
    22: ("纸业", "Paper"), 23: ("印务", "Printing"), 24: ("文体用品", "Stationery"),
    25: ("石化", "Petrochemical"), 26: ("化工", "Chemical"), 27: ("药业", "Pharmaceutical"),
    28: ("化纤", "Chemical Fibre"), 29: ("塑业", "Plastics"), 30: ("建材", "Building Materials"),
    31: ("钢铁", "Steel"), 32: ("有色金属", "Nonferrous Metals"), 33: ("五金", "Hardware"),
    34: ("机械", "Machinery"), 35: ("装备", "Equipment"), 36: ("汽车部件", "Auto Parts"),
    37: ("船舶", "Marine"), 38: ("电气", "Electric"), 39: ("电子", "Electronics"),
    40: ("仪表", "Instruments"), 41: ("工艺品", "Crafts"), 42: ("再生资源", "Recycling"),
    43: ("设备维修", "Equipment Repair"),
}
SECTION_WORDS = {
    "A": ("农业", "Agriculture"), "B": ("矿业", "Mining"), "C": ("制造", "Manufacturing"),
    "D": ("能源", "Energy"), "E": ("建设", "Construction"), "F": ("贸易", "Trading"),
    "G": ("物流", "Logistics"), "H": ("餐饮", "Catering"), "I": ("信息技术", "IT"),
    "J": ("投资", "Investment"), "K": ("置业", "Real Estate"), "L": ("企业管理", "Management"),
    "M": ("科技", "Technology"), "N": ("环境工程", "Environmental"), "O": ("家政服务", "Services"),
    "P": ("教育科技", "Education"), "Q": ("健康管理", "Health"), "R": ("文化传媒", "Media"),
    "S": ("社会服务", "Services"), "T": ("国际合作", "International"),
}
SECTION_WEIGHT = {"C": 0.68, "F": 0.08, "I": 0.05, "M": 0.05, "E": 0.04, "G": 0.02, "L": 0.02,
                  "D": 0.015, "B": 0.01, "K": 0.01, "N": 0.01, "A": 0.005, "H": 0.005, "R": 0.005}
# Zhejiang's manufacturing leans to textiles, machinery, electrical and electronics.
DIVISION_WEIGHT = {17: 3.0, 18: 2.0, 26: 2.0, 29: 2.0, 33: 2.5, 34: 3.0, 35: 2.0, 36: 1.5,
                   38: 3.0, 39: 2.5, 40: 1.5}
SUFFIXES = [("有限公司", "Co., Ltd."), ("股份有限公司", "Co., Ltd."),
            ("集团有限公司", "Group Co., Ltd.")]
SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余")
GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红玲丹建国文辉鹏飞燕晨浩宇婷雪琳")
MOBILE_PREFIXES = ("130 131 132 133 135 136 137 138 139 150 151 152 153 155 156 157 158 159 166 "
                   "173 177 180 181 182 183 185 186 187 188 189 191 198 199").split()
# Registration offices recorded in old codes: abolished or since-renamed county codes.
OLD_ZJ_CODES = ["330103", "330104", "330183", "330184", "330185", "330204", "330283", "330621",
                "330682", "331021"]
OUTSIDE_CODES = ["310115", "310104", "320505", "320102", "110108", "440305", "340104", "360102",
                 "350203", "370202", "420106", "510107"]
# fmt: on

SHAPES = ("csv", "csv_bom", "csv_gb", "xlsx", "jsonl")
EXT = {"csv": "csv", "csv_bom": "csv", "csv_gb": "csv", "xlsx": "xlsx", "jsonl": "jsonl"}
_ATTACHMENTS = "_attachments"


# ---------------------------------------------------------------------------------------------
# Randomness: one named stream per purpose, so adding a draw in one place moves nothing else.
# ---------------------------------------------------------------------------------------------


def _stream(seed: int, *key: int | str) -> np.random.Generator:
    words = [int(seed) % (1 << 63)]
    for k in key:
        words.append(zlib.crc32(k.encode()) if isinstance(k, str) else int(k) % (1 << 63))
    return np.random.default_rng(np.random.SeedSequence(words))


def _draws(seed: int, *scope: int | str):
    """A fresh stream per named draw, so element i is the same whatever the length drawn."""
    return lambda name: _stream(seed, *scope, name)


class _Py:
    """Scalar draws for the per-row Python stages, from a numpy Generator."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def random(self) -> float:
        return float(self.rng.random())

    def int(self, lo: int, hi: int) -> int:  # inclusive
        return int(self.rng.integers(lo, hi + 1))

    def pick(self, seq):
        return seq[int(self.rng.integers(0, len(seq)))]


# ---------------------------------------------------------------------------------------------
# Credit codes (checked by the oracle's check_character, written here in bulk)
# ---------------------------------------------------------------------------------------------


def _codes_from_values(values: np.ndarray) -> np.ndarray:
    """(n, 17) alphabet values -> n valid 18-character codes (check character appended)."""
    total = np.zeros(len(values), dtype=np.int64)
    for i, weight in enumerate(CREDIT_CODE_WEIGHTS):  # column by column: no (n, 17) temporaries
        total += values[:, i].astype(np.int64) * weight
    check = ((31 - total % 31) % 31).astype(np.uint8)
    table = np.frombuffer(CREDIT_CODE_ALPHABET.encode(), dtype=np.uint8)
    chars = np.ascontiguousarray(table[np.concatenate([values, check[:, None]], axis=1)])
    return pl.Series(chars.view("S18").ravel()).cast(pl.Utf8)


# ---------------------------------------------------------------------------------------------
# Population (seed only: stable across years)
# ---------------------------------------------------------------------------------------------


def _size_rule(employees: np.ndarray, revenue_cents: np.ndarray) -> np.ndarray:
    thresholds = reference.size_thresholds()
    out = np.full(employees.shape, "micro", dtype=object)
    for size in ("small", "medium", "large"):
        floor = thresholds[size]
        met = (employees >= floor["employees"]) & (revenue_cents >= round(floor["revenue"] * 100))
        out[met] = size
    return out


def _population(seed: int, n: int) -> pl.DataFrame:
    """Every enterprise of the province sample: identity, stable baselines, contact."""
    counties = [r for r in reference.regions() if r["level"] == "county"]
    city_names = {r["code"]: r["name"] for r in reference.regions() if r["level"] == "city"}
    county_code = np.array([r["code"] for r in counties])
    weights = np.array([CITIES[c[:4]][2] for c in county_code])
    region = _stream(seed, "pop.region").choice(len(counties), size=n, p=weights / weights.sum())

    sections = reference.class_sections()
    classes = sorted(sections)
    per_section = Counter(sections.values())
    c_div_total = sum(DIVISION_WEIGHT.get(int(c[:2]), 1.0) for c in classes if sections[c] == "C")
    cls_w = []
    for c in classes:
        s = sections[c]
        if s == "C":
            cls_w.append(SECTION_WEIGHT["C"] * DIVISION_WEIGHT.get(int(c[:2]), 1.0) / c_div_total)
        else:
            cls_w.append(SECTION_WEIGHT.get(s, 0.0) / per_section[s])
    cls_w = np.array(cls_w)
    industry = _stream(seed, "pop.industry").choice(len(classes), size=n, p=cls_w / cls_w.sum())
    class_section = [sections[c] for c in classes]
    section = np.array(class_section)[industry]
    bcd = np.isin(np.array(class_section), reference.SIZE_RULE_SECTIONS)[industry]

    # Activity: most enterprises have no standards work at all; a few do a lot of it.
    level = _stream(seed, "pop.activity").choice(4, size=n, p=[0.74, 0.22, 0.035, 0.005])
    scale = np.array([0.0, 1.0, 4.0, 15.0])[level]
    active = level > 0

    g = _draws(seed, "pop.size")
    employees = np.rint(
        g("employees").lognormal(np.log(30), 1.25, n) * np.array([1, 1.5, 3, 8])[level]
    )
    employees = np.clip(employees, 1, 250_000).astype(np.int64)
    per_head = np.where(
        section == "C",
        g("per_head_c").lognormal(np.log(50), 0.9, n),
        g("per_head").lognormal(np.log(30), 1.0, n),
    )  # 万元 per person
    revenue = np.maximum(100, np.rint(employees * per_head * 100)).astype(np.int64)  # cents
    size = _size_rule(employees, revenue)
    size = _gather(
        ["micro", "small", "medium", "large"],
        np.select([size == "large", size == "medium", size == "small"], [3, 2, 1], 0),
    )
    # The enterprises that never file: a property of the enterprise, the same every year.
    never_files = _stream(seed, "pop.never_files").random(n) < _by_size(size, NEVER_FILING)

    def base(key: str, p: np.ndarray | float, magnitude: np.ndarray) -> np.ndarray:
        r = _draws(seed, "pop.count", key)
        u, m = r("share").random(n), r("size").lognormal(0.0, 0.6, n)
        return np.where(u < p, magnitude * m, 0.0)

    b: dict[str, np.ndarray] = {}
    b["enterprise_declared"] = base("declared", np.where(active, 0.9, 0), scale * 4)
    b["leader_standards"] = np.where(
        _stream(seed, "pop.leader").random(n) < 0.12, b["enterprise_declared"] * 0.4, 0.0
    )
    sizes = size.to_numpy()
    for lv in LEVELS:
        inv = base(
            f"{lv}_involved",
            _by_size_activity(sizes, level, TAKES_PART[lv]),
            np.array([0.0, *PER_PARTICIPANT[lv]])[level],
        )
        b[f"{lv}_involved"] = inv
        leads = _stream(seed, "pop.led", lv).random(n) < LEADS[lv]
        b[f"{lv}_led"] = np.where(leads, inv * LED_SHARE, 0.0)
    for col, (chance, many) in CAPACITY.items():
        b[col] = base(
            col, _by_size_activity(sizes, level, chance), np.array([0.0, *many])[level]
        )
    staff = base("std_staff", np.where(active, 0.9, 0.2), np.maximum(scale, 0.7) * 2)
    b["std_staff"] = np.minimum(staff, employees)
    spend = base("std_spending", np.where(active, 0.9, 0.1), np.maximum(scale, 0.15) * 8) * 100
    b["std_spending"] = np.minimum(np.rint(spend), revenue)
    b["financing_amount"] = base("financing", np.where(active, 0.05, 0.005), 500.0) * 100
    rd = _draws(seed, "pop.rd")
    rd_blank = rd("blank").random(n) < 0.3
    b["rd_expenditure"] = np.where(
        rd_blank, -1.0, np.rint(revenue * rd("share").uniform(0, 0.06, n))
    )

    # Credit codes: mostly 91 + the county (or its city, or an old office code); 2% elsewhere.
    cc = _draws(seed, "pop.code")
    entity = cc("entity").choice([1, 2, 3], size=n, p=[0.97, 0.02, 0.01])
    which = cc("office").random(n)
    own = county_code[region]
    city_of_county = np.array([c[:4] + "00" for c in county_code])
    city_code = city_of_county[region]
    # An old office code only from the enterprise's own city (else the city code itself).
    olds = [[o for o in OLD_ZJ_CODES if o[:4] == c[:4]] or [c] for c in city_of_county]
    width = max(len(o) for o in olds)
    old_table = np.array([[o[k % len(o)] for k in range(width)] for o in olds])
    pick = cc("old").integers(0, 1 << 30, n)
    old_count = np.array([len(o) for o in olds])
    old = old_table[region, pick % old_count[region]]
    outside_code = np.array(OUTSIDE_CODES)[cc("outside_code").integers(0, len(OUTSIDE_CODES), n)]
    outside = cc("outside").random(n) < OUTSIDE_SHARE
    reg = np.where(
        which < 0.80, own, np.where(which < 0.92, city_code, np.where(which < 0.97, old, "330000"))
    )
    reg = np.where(outside, outside_code, reg)
    values = np.zeros((n, 17), dtype=np.uint8)
    values[:, 0] = 9
    values[:, 1] = entity
    values[:, 2:8] = np.frombuffer(reg.astype("S6").tobytes(), dtype=np.uint8).reshape(n, 6) - ord(
        "0"
    )
    # Organisation code: a bijection of the index keeps codes unique without a retry loop.
    idx = np.arange(n, dtype=np.int64)
    mult, span = 1_000_003 * 7919, 31**7
    org = (idx * (mult % span) + (seed * 7_777_777_777) % span) % span
    digits = np.stack([(org // 31**k) % 31 for k in range(6, -1, -1)], axis=1).astype(np.uint8)
    ma = cc("ma").random(n) < 0.45
    lead = cc("lead").integers(0, 10, n)
    tail = cc("tail").integers(0, 31, n)
    # Positions 9-17 differ in shape (M vs a digit at 9), so the two styles never collide.
    values[:, 8] = np.where(ma, CODE_VALUE["M"], lead)
    values[:, 9] = np.where(ma, CODE_VALUE["A"], digits[:, 0])
    values[:, 10:17] = np.where(
        ma[:, None],
        digits,
        np.concatenate([digits[:, 1:7], tail[:, None].astype(np.uint8)], axis=1),
    )
    codes = _codes_from_values(values)

    # Names: 字号 + industry word + legal form, prefixed by city, province or county.
    nm = _draws(seed, "pop.name")
    z1, z2 = nm("z1").integers(0, len(ZIHAO_1), n), nm("z2").integers(0, len(ZIHAO_2), n)
    style = nm("style").choice(5, size=n, p=[0.45, 0.25, 0.22, 0.06, 0.02])
    suffix = nm("suffix").choice(3, size=n, p=[0.8, 0.15, 0.05])
    words = [
        DIVISION_WORDS.get(int(c[:2]), SECTION_WORDS["C"])
        if sections[c] == "C"
        else SECTION_WORDS[sections[c]]
        for c in classes
    ]
    frame = pl.DataFrame(
        {
            "city": _gather(
                [city_names[c[:4] + "00"].removesuffix("市") for c in county_code], region
            ),
            "city_py": _gather([CITIES[c[:4]][0] for c in county_code], region),
            "county": _gather([_short(r["name"]) for r in counties], region),
            "z1": _gather([z[0] for z in ZIHAO_1], z1),
            "z1py": _gather([z[1] for z in ZIHAO_1], z1),
            "z2": _gather([z[0] for z in ZIHAO_2], z2),
            "z2py": _gather([z[1] for z in ZIHAO_2], z2),
            "word": _gather([w[0] for w in words], industry),
            "word_en": _gather([w[1] for w in words], industry),
            "style": style,
            "suffix": _gather([x[0] for x in SUFFIXES], suffix),
            "suffix_en": _gather([x[1] for x in SUFFIXES], suffix),
        }
    )
    zh = pl.concat_str("z1", "z2")
    name = frame.select(
        pl.when(pl.col("style") == 0)
        .then(pl.concat_str("city", zh, "word", "suffix"))
        .when(pl.col("style") == 1)
        .then(pl.concat_str(pl.lit("浙江"), zh, "word", "suffix"))
        .when(pl.col("style") == 2)
        .then(pl.concat_str("county", zh, "word", pl.lit("有限公司")))
        .when(pl.col("style") == 3)
        .then(pl.concat_str(zh, "word", pl.lit("有限公司"), "city", pl.lit("分公司")))
        .otherwise(
            pl.concat_str(
                "city_py",
                pl.lit(" "),
                "z1py",
                "z2py",
                pl.lit(" "),
                "word_en",
                pl.lit(" "),
                "suffix_en",
            )
        )
        .alias("name")
    )["name"]

    ct = _draws(seed, "pop.contact")
    surname = _gather(SURNAMES, ct("surname").integers(0, len(SURNAMES), n))
    given1 = _gather(GIVEN, ct("given1").integers(0, len(GIVEN), n))
    given2 = _gather(
        [*GIVEN, ""],
        np.where(ct("two").random(n) < 0.7, ct("given2").integers(0, len(GIVEN), n), len(GIVEN)),
    )
    mobile = ct("mobile").random(n) < 0.75
    prefix = _gather(MOBILE_PREFIXES, ct("prefix").integers(0, len(MOBILE_PREFIXES), n))
    tail = ct("tail").integers(0, 100_000_000, n)
    area = _gather([CITIES[c[:4]][1] for c in county_code], region)
    land = ct("land_lead").integers(2, 9, n) * 10_000_000 + ct("land").integers(0, 10_000_000, n)
    layout = ct("layout").choice(4, size=n, p=[0.88, 0.04, 0.04, 0.04])  # as the person writes it
    people = pl.DataFrame(
        {
            "s": surname,
            "g1": given1,
            "g2": given2,
            "mobile": mobile,
            "prefix": prefix,
            "tail": pl.Series(tail).cast(pl.Utf8).str.zfill(8),
            "area": area,
            "land": pl.Series(land).cast(pl.Utf8),
            "layout": layout,
        }
    )
    spaced_mobile = pl.concat_str(
        "prefix",
        pl.lit(" "),
        pl.col("tail").str.slice(0, 4),
        pl.lit(" "),
        pl.col("tail").str.slice(4),
    )
    people = people.select(
        pl.concat_str("s", "g1", "g2").alias("contact_name"),
        pl.when(pl.col("mobile") & (pl.col("layout") == 1))
        .then(spaced_mobile)
        .when(pl.col("mobile"))
        .then(pl.concat_str("prefix", "tail"))
        .when(pl.col("layout") == 1)
        .then(pl.concat_str(pl.lit("("), "area", pl.lit(")"), "land"))
        .when(pl.col("layout") == 2)
        .then(pl.concat_str("area", pl.lit(" "), "land"))
        .when(pl.col("layout") == 3)
        .then(pl.concat_str("area", "land"))
        .otherwise(pl.concat_str("area", pl.lit("-"), "land"))
        .alias("contact_phone"),
    )

    columns = {
        "credit_code": codes,
        "enterprise_name": name,
        "region_code": _gather(list(county_code), region),
        "industry_code": _gather(classes, industry),
        "section": _gather(class_section, industry),
        "bcd": bcd,
        "size_class": size,
        "outside": outside,
        "employees_b": employees,
        "revenue_b": revenue,
        "contact_name": people["contact_name"],
        "contact_phone": people["contact_phone"],
        "activity": level,
        "never_files": never_files,
    }
    for col, arr in b.items():
        columns[f"{col}_b"] = arr
    return pl.DataFrame(columns)


def _by_size(size: pl.Series, table: dict[str, float]) -> np.ndarray:
    return size.replace_strict(table, return_dtype=pl.Float64).to_numpy()


def _by_size_activity(
    size: np.ndarray, activity: np.ndarray, table: dict[str, tuple[float, ...]]
) -> np.ndarray:
    """Each enterprise's entry of a TAKES_PART-like table: 0 at activity 0."""
    out = np.zeros(len(size))
    for size_class, values in table.items():
        for level, value in enumerate(values, start=1):
            out[(size == size_class) & (activity == level)] = value
    return out


def _gather(table: list[str], idx: np.ndarray) -> pl.Series:
    """Strings picked from a small table by index (no per-row Python strings)."""
    return pl.Series(table, dtype=pl.Utf8).gather(pl.Series(idx, dtype=pl.UInt32))


def _short(county_name: str) -> str:
    return county_name[:-1] if len(county_name) > 2 and county_name[-1] in "区县市" else county_name


# ---------------------------------------------------------------------------------------------
# The frame file (seed only, like the population: every year lists the same enterprises)
# ---------------------------------------------------------------------------------------------

_PADS = (" {} ", "{} ", " {}", "  {}  ")  # ASCII spaces: what any trim removes


def _spelled(codes: pl.Series, spelling: np.ndarray, pad: np.ndarray) -> pl.Series:
    """Codes as written: 0 as is, 1 lower case, 2 full-width, 3 within spaces. Only the few
    respelled codes go through Python."""
    idx = np.flatnonzero(spelling)
    if not len(idx):
        return codes
    written = [
        code.lower() if s == 1 else _fullwidth(code) if s == 2 else _PADS[p].format(code)
        for code, s, p in zip(codes.gather(idx).to_list(), spelling[idx], pad[idx], strict=True)
    ]
    return codes.clone().scatter(idx, written)


def _frame(pop: pl.DataFrame, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The frame file's rows, and its N402 rows (source_row as a person counts, header = 1;
    credit_code as written). Every enterprise once, some codes in other spellings (survey-form
    §6 normalises them), plus rows whose code fails the check (N402) and enterprises listed a
    second time in another spelling (counted once), spread among the others."""
    n = pop.height
    g = _draws(seed, "frame")
    rows = pop.select(FRAME_COLUMNS)
    codes = rows["credit_code"]
    u = g("spelling").random(n)
    cuts = np.cumsum([FRAME_LOWER_SHARE, FRAME_FULLWIDTH_SHARE, FRAME_SPACED_SHARE])
    spelling = np.select([u < cuts[0], u < cuts[1], u < cuts[2]], [1, 2, 3], 0)
    real = rows.with_columns(credit_code=_spelled(codes, spelling, g("pad").integers(0, 4, n)))

    # N402: a template's code with one character of its body changed and a check character
    # that does not fit it; a valid code cannot equal it, so it matches no enterprise.
    k_bad = max(FRAME_BAD_CODE_MIN, round(FRAME_BAD_CODE_SHARE * n))
    bad = rows[g("bad").choice(n, size=k_bad, replace=k_bad > n)]
    pos = g("bad_pos").integers(8, 17, k_bad)
    shift = g("bad_char").integers(1, 31, k_bad)
    wrong = g("bad_check").integers(1, 31, k_bad)
    bad_codes = []
    for code, p, c, w in zip(bad["credit_code"].to_list(), pos, shift, wrong, strict=True):
        body = code[:p] + CREDIT_CODE_ALPHABET[(CODE_VALUE[code[p]] + c) % 31] + code[p + 1 : 17]
        right = CODE_VALUE[check_character(body)]
        bad_codes.append(body + CREDIT_CODE_ALPHABET[(right + w) % 31])
    bad = bad.with_columns(credit_code=pl.Series(bad_codes, dtype=pl.Utf8))

    # Listed twice: the same row, its code in a spelling other than the first listing's.
    k_rep = max(FRAME_REPEAT_MIN, round(FRAME_REPEAT_SHARE * n))
    of = g("repeat").choice(n, size=k_rep, replace=k_rep > n)
    again = (spelling[of] + g("repeat_spelling").integers(1, 4, k_rep)) % 4
    repeat = rows[of].with_columns(
        credit_code=_spelled(codes.gather(of), again, g("repeat_pad").integers(0, 4, k_rep))
    )

    # Extra row j goes before frame row slot[j] (ties in the order drawn).
    k = k_bad + k_rep
    slot = np.concatenate([np.arange(n), g("slot").integers(0, n + 1, k)])
    extra = np.concatenate([np.ones(n, dtype=np.int64), np.zeros(k, dtype=np.int64)])
    tie = np.concatenate([np.zeros(n, dtype=np.int64), np.arange(k)])
    order = np.lexsort((tie, extra, slot))
    frame = pl.concat([real, bad, repeat])[order]
    position = np.empty(n + k, dtype=np.int64)
    position[order] = np.arange(n + k)
    rejected = pl.DataFrame(
        {"source_row": position[n : n + k_bad] + 2, "credit_code": bad["credit_code"]}
    ).sort("source_row")
    return frame, rejected


# ---------------------------------------------------------------------------------------------
# One year's values (year changes activity only, by a bounded noise on stable baselines)
# ---------------------------------------------------------------------------------------------


def _noisy(base: np.ndarray, factor: np.ndarray) -> np.ndarray:
    # A nonzero baseline never rounds to 0: rule W106 compares years, and 0 -> n is a jump.
    return np.where(base > 0, np.maximum(1, np.rint(base * factor)), 0).astype(np.int64)


def _year_values(pop: pl.DataFrame, seed: int, year: int) -> dict[str, np.ndarray]:
    n = pop.height
    noise_cols = [
        "employees",
        "revenue",
        *BC_COUNTS,
        "std_spending",
        "financing_amount",
        "rd_expenditure",
    ]
    factor = _stream(seed, "year.noise", year).uniform(0.8, 1.25, size=(n, len(noise_cols)))
    f = {c: factor[:, i] for i, c in enumerate(noise_cols)}
    v: dict[str, np.ndarray] = {}
    emp_b, rev_b = pop["employees_b"].to_numpy(), pop["revenue_b"].to_numpy()
    emp, rev = _noisy(emp_b, f["employees"]), _noisy(rev_b, f["revenue"])
    # Size is an enterprise fact: where noise would cross a 2017 bound, keep the baseline.
    drift = pop["bcd"].to_numpy() & (_size_rule(emp, rev) != pop["size_class"].to_numpy())
    v["employees"], v["revenue"] = np.where(drift, emp_b, emp), np.where(drift, rev_b, rev)
    for c in BC_COUNTS:
        v[c] = _noisy(pop[f"{c}_b"].to_numpy(), f[c])
    for lv in LEVELS:
        v[f"{lv}_led"] = np.minimum(v[f"{lv}_led"], v[f"{lv}_involved"])
    v["leader_standards"] = np.minimum(v["leader_standards"], v["enterprise_declared"])
    v["std_staff"] = np.minimum(v["std_staff"], v["employees"])
    v["std_spending"] = np.minimum(
        _noisy(pop["std_spending_b"].to_numpy(), f["std_spending"]), v["revenue"]
    )
    v["financing_amount"] = _noisy(pop["financing_amount_b"].to_numpy(), f["financing_amount"])
    rd_b = pop["rd_expenditure_b"].to_numpy()
    v["rd_expenditure"] = np.where(
        rd_b < 0, -1, np.where(rd_b == 0, 0, np.maximum(1, np.rint(rd_b * f["rd_expenditure"])))
    ).astype(np.int64)

    g = _draws(seed, "year.misc", year)
    active = pop["activity"].to_numpy() > 0
    level = np.array(["county", "city", "province"])[
        g("award").choice(3, size=n, p=[0.6, 0.3, 0.1])
    ]
    award = np.where(g("awarded").random(n) < np.where(active, 0.1, 0.005), level, "none")
    v["innovation_award"] = award
    # Non-response: the never-filers, and a size-dependent miss this year among the others
    # (its chance scaled so that the two together give NON_FILING for the size class).
    size = pop["size_class"]
    never = pop["never_files"].to_numpy()
    miss = (_by_size(size, NON_FILING) - _by_size(size, NEVER_FILING)) / (
        1 - _by_size(size, NEVER_FILING)
    )
    v["files"] = ~never & (g("files").random(n) >= miss)

    # Submission times: a deadline rush in March; people often type minutes only.
    start = np.datetime64(f"{year + 1}-01-01T00:00:00", "s")
    month_start = np.array(
        [np.datetime64(f"{year + 1}-{m:02d}-01T00:00:00", "s") for m in (1, 2, 3, 4)]
    )
    month = g("month").choice(3, size=n, p=[0.2, 0.3, 0.5])
    month_len = (month_start[1:] - month_start[:-1]).astype(np.int64) // 86400
    day = (g("day").random(n) * month_len[month]).astype(np.int64)
    hour = np.clip(np.rint(g("hour").normal(14, 3.5, n)), 0, 23).astype(np.int64)
    minute, second = g("minute").integers(0, 60, n), g("second").integers(0, 60, n)
    second = np.where(g("whole_minute").random(n) < 0.35, 0, second)
    midnight = g("midnight").random(n) < 0.02
    hour, minute, second = (
        np.where(midnight, 0, hour),
        np.where(midnight, 0, minute),
        np.where(midnight, 0, second),
    )
    stamp = month_start[month] + (day * 86400 + hour * 3600 + minute * 60 + second).astype(
        "timedelta64[s]"
    )
    # A handful at the very first second of the window: inside it (W104's lower bound is closed).
    stamp = np.where(g("first_second").random(n) < 0.0005, start, stamp)
    v["submitted_at"] = stamp
    return v


# ---------------------------------------------------------------------------------------------
# Cell text helpers
# ---------------------------------------------------------------------------------------------


def _cents_text(c: int) -> str:
    sign = "-" if c < 0 else ""
    c = abs(c)
    return f"{sign}{c // 100}.{c % 100:02d}"


def _cents(text: str) -> int:
    whole, frac = text.split(".")
    return int(whole) * 100 + (int(frac) if not whole.startswith("-") else -int(frac))


def _fullwidth(text: str) -> str:
    return "".join(
        chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ("\u3000" if ch == " " else ch)
        for ch in text
    )


def _thousands(text: str) -> str:
    whole, dot, frac = text.partition(".")
    return f"{int(whole):,}" + (dot + frac if dot else "")


def _pad(py: _Py, text: str) -> str:
    return py.pick([" {} ", "{} ", " {}", "\u3000{}", "{}\u3000", "  {}"]).format(text)


# ---------------------------------------------------------------------------------------------
# Faults: each makes its rule fire on the row; the oracle confirms it afterwards.
# ---------------------------------------------------------------------------------------------


# The counts a W106 jump may hit (no led count: a jump there would also break E009).
JUMP_COLUMNS = (
    "enterprise_declared",
    "patents_in_standards",
    "national_tc_members",
    "zhejiang_made",
    "intl_registered_experts",
    *(f"{lv}_involved" for lv in LEVELS),
)


class _Faults:
    def __init__(self, year: int, py: _Py, previous: dict[str, dict[str, int]]):
        self.year, self.py, self.previous = year, py, previous
        self.sections = reference.class_sections()

    def eligible(self, rule: str, cells: dict[str, Any]) -> bool:
        section = self.sections.get(cells["industry_code"])
        if rule == "W102":
            return section in reference.SIZE_RULE_SECTIONS
        if rule == "W106":
            return cells["credit_code"] in self.previous
        return True

    def apply(self, rule: str, c: dict[str, Any]) -> set[str]:
        """Make `rule` fire on row c (canonical text cells); returns the columns touched."""
        py, year = self.py, self.year
        if rule == "E001":
            col = py.pick(REQUIRED_COLS)
            c[col] = py.pick([None, None, "  ", "\u3000"])
            return {col}
        if rule == "E002":
            emp = c["employees"]
            options = [
                ("employees", f"约{emp}"),
                ("employees", f"{emp}人"),
                ("employees", f"{emp}.5"),
                (py.pick(BC_COUNTS), py.pick(["2.5", "无", "1O", "两项", "0.5"])),
                ("revenue", py.pick(["N/A", f"约{c['revenue']}万", "五百"])),
                ("std_spending", "不详"),
                ("rd_expenditure", py.pick(["未统计", "—", "见附表"])),
                ("survey_year", py.pick([f"{year}年", f"{year}年度"])),
                (
                    "submitted_at",
                    py.pick(
                        [
                            f"{year + 1}-02-30 10:15:00",
                            f"{year + 1}/02/15 10:15",
                            f"{year + 1}-13-01 09:00:00",
                            f"{year + 1}-03-10 24:30:00",
                            f"15/03/{year + 1}",
                        ]
                    ),
                ),
            ]
            col, value = py.pick(options)
            c[col] = value
            return {col}
        if rule == "E003":
            kind = py.int(0, 4)
            if kind == 0:
                c["employees"] = str(EMPLOYEES_MAX + py.int(1, 500_000))
                return {"employees"}
            if kind == 1:
                col = py.pick(
                    [
                        "patents_in_standards",
                        "zhejiang_made",
                        "intl_tc_posts",
                        "national_tc_members",
                        "intl_registered_experts",
                        *(f"{lv}_led" for lv in LEVELS),
                    ]
                )
                c[col] = str(-py.int(1, 3))
                return {col}
            if kind == 2:
                col = py.pick(
                    [
                        "patents_in_standards",
                        "national_tc_members",
                        "enterprise_declared",
                        *(f"{lv}_involved" for lv in LEVELS),
                    ]
                )
                c[col] = str(COUNT_MAX + py.int(1, 50_000))
                return {col}
            if kind == 3:
                col = py.pick(["financing_amount", "std_spending", "rd_expenditure"])
                c[col] = _cents_text(-py.int(100, 500_000))
                return {col}
            filler = re.sub(r"\s", "", c["enterprise_name"]) or "企业"
            c["enterprise_name"] = py.pick(
                ["厂", "X", (filler * (NAME_MAX + 1))[: NAME_MAX + py.int(1, 30)]]
            )
            return {"enterprise_name"}
        if rule == "E004":
            code = c["credit_code"]
            kind = py.int(0, 3)
            if kind == 0:
                pos = py.int(0, 16)
                code = code[:pos] + py.pick("IOSVZ") + code[pos + 1 :]
            elif kind == 1:
                code = code[:17]
            elif kind == 2:
                code = code + py.pick("0123456789")
            else:
                code = code[:6] + "-" + code[6:17]
            c["credit_code"] = code
            return {"credit_code"}
        if rule == "E005":
            code = c["credit_code"]
            wrong = [ch for ch in CREDIT_CODE_ALPHABET if ch != code[17]]
            c["credit_code"] = code[:17] + py.pick(wrong)
            return {"credit_code"}
        if rule == "E006":
            c["region_code"] = py.pick(
                ["330103", "330104", "330100", "330000", "320106", "33010", "3301O2", "310115"]
            )
            return {"region_code"}
        if rule == "E007":
            ind = c["industry_code"]
            c["industry_code"] = py.pick([ind[:2], ind[:3], "C" + ind, "9999", "0000", ind + "0"])
            return {"industry_code"}
        if rule == "E008":
            # A wrong size in sections B-D would also raise the question of W102 against a
            # non-value; keep the size variant to other sections.
            if (
                self.sections.get(c["industry_code"]) not in reference.SIZE_RULE_SECTIONS
                and py.random() < 0.5
            ):
                c["size_class"] = py.pick(["特大型", "huge", "中小型", "个体"])
                return {"size_class"}
            c["innovation_award"] = py.pick(["国家级", "national", "gold", "区级"])
            return {"innovation_award"}
        if rule == "E009":
            lv = py.pick(LEVELS)
            c[f"{lv}_led"] = str(int(c[f"{lv}_involved"]) + py.int(1, 3))
            return {f"{lv}_led"}
        if rule == "E010":
            c["std_staff"] = str(int(c["employees"]) + py.int(1, 20))
            return {"std_staff"}
        if rule == "E011":
            c["survey_year"] = str(year + py.pick([-1, -1, 1, -2]))
            return {"survey_year"}
        if rule == "W101":
            c["std_spending"] = _cents_text(_cents(c["revenue"]) + py.int(1, 2_000_000))
            return {"std_spending"}
        if rule == "W102":
            c["size_class"] = py.pick(
                [s for s in ("large", "medium", "small", "micro") if s != c["size_class"]]
            )
            return {"size_class"}
        if rule == "W104":
            kind = py.int(0, 3)
            if kind == 0:
                at = datetime(year, 12, py.int(10, 31), py.int(8, 20), py.int(0, 59), py.int(0, 59))
            elif kind == 1:
                at = datetime(
                    year + 1, 4, py.int(1, 30), py.int(8, 20), py.int(0, 59), py.int(0, 59)
                )
            elif kind == 2:
                at = datetime(year + 1, 4, 1)  # the window's upper bound is open
            else:
                at = datetime(year + 1, py.int(5, 8), py.int(1, 28), py.int(8, 20), py.int(0, 59))
            c["submitted_at"] = at.strftime(DT_CANON)
            return {"submitted_at"}
        if rule == "W105":
            c["leader_standards"] = str(int(c["enterprise_declared"]) + py.int(1, 4))
            return {"leader_standards"}
        if rule == "W106":
            last = self.previous[c["credit_code"]]
            # A digit too many in a count the enterprise reported last year; else (most report
            # no standards work) the common enterprise standards. Rare counts stay rare: a jump
            # to 20 in every column would outweigh a year's international standards.
            col = py.pick(
                [col for col in JUMP_COLUMNS if last.get(col, 0) > 0] or ["enterprise_declared"]
            )
            c[col] = str(max(TENFOLD_FLOOR, TENFOLD * last.get(col, 0) + 1) + py.int(0, 15))
            return {col}
        if rule == "W107":
            phone = re.sub(r"[^0-9]", "", c["contact_phone"])
            if phone.startswith("1"):
                options = [
                    "+86 " + phone,
                    phone[:-1],
                    "12" + phone[2:],
                    phone + "转8001",
                    f"{phone[:3]}-{phone[3:7]}-{phone[7:]}",
                    "无",
                ]
            else:
                area, number = phone[:4], phone[4:]
                options = [
                    f"+86 {area[1:]} {number}",
                    area[1:] + "-" + number,
                    number,
                    f"{area}-{number}-8001",
                    f"{area}-{number[:4]}-{number[4:]}",
                    "同上",
                ]
            c["contact_phone"] = py.pick(options)
            return {"contact_phone"}
        raise ValueError(rule)


# ---------------------------------------------------------------------------------------------
# Representation variants: every one normalises back to the same typed value.
# ---------------------------------------------------------------------------------------------


def _variant(py: _Py, col: str, text: str | None, zero_blank: bool = True) -> str | None:
    if text is None:
        return None
    kind = FORM_COLUMNS[col].kind
    if kind in ("count", "integer"):
        if not text.isdigit():
            return text
        options = [_fullwidth(text), _pad(py, text), text + ".0"]
        if int(text) >= 1000 and kind == "count":  # "2,024" as a year would be odd
            options += [_thousands(text)] * 3
        if text == "0" and FORM_COLUMNS[col].blank == "zero" and zero_blank:
            options += [None, None]
        return py.pick(options)
    if kind == "amount":
        if not re.fullmatch(r"[0-9]+\.[0-9]{2}", text):
            return text
        trimmed = text.rstrip("0").rstrip(".")
        options = [_fullwidth(text), _pad(py, text), trimmed]
        if float(text) >= 1000:
            options += [_thousands(text), _thousands(trimmed)] * 2
        if float(text) == 0 and FORM_COLUMNS[col].blank == "zero" and zero_blank:
            options.append(None)
        return py.pick(options)
    if col == "credit_code":
        return py.pick([text.lower(), _pad(py, text), _fullwidth(text)])
    if col in ("region_code", "industry_code"):
        return py.pick([_pad(py, text), _fullwidth(text)])
    if col in ("enterprise_name", "contact_name"):
        return _pad(py, text)
    if col == "size_class":
        if text not in SIZE_ZH:
            return text
        return py.pick([SIZE_ZH[text], text.capitalize(), text.upper(), _pad(py, SIZE_ZH[text])])
    if col == "innovation_award":
        if text not in AWARD_ZH:
            return text
        return py.pick([AWARD_ZH[text], text.capitalize(), *([None] if text == "none" else [])])
    if col == "contact_phone":
        # Spaced or bracketed layouts are other texts (the population has some); these are not.
        return py.pick([_pad(py, text), _fullwidth(text)])
    if col == "submitted_at":
        try:
            at = datetime.strptime(text, DT_CANON)
        except ValueError:
            return text
        options = [
            at.strftime("%Y-%m-%dT%H:%M:%S"),
            at.strftime("%Y-%m-%dT%H:%M:%S") + "+08:00",
            _fullwidth(text),
        ]
        if at.second == 0:
            options += [at.strftime("%Y-%m-%d %H:%M"), at.strftime("%Y-%m-%dT%H:%M")]
        if at.hour == at.minute == at.second == 0:
            options += [at.strftime("%Y-%m-%d")] * 3
        return py.pick(options)
    return text


# ---------------------------------------------------------------------------------------------
# Building the year's rows
# ---------------------------------------------------------------------------------------------


def _clean_values(pop: pl.DataFrame, v: dict[str, np.ndarray]) -> pl.DataFrame:
    """What each enterprise would report this year before any fault: the truth of the ones
    without an accepted return. Counts as integers, amounts in cents (narrow: 1M rows)."""
    data: dict[str, Any] = {"credit_code": pop["credit_code"], "files": v["files"]}
    for c in MAGNITUDES:
        data[c] = pl.Series(v[c], dtype=pl.Int64 if c in AMOUNT_COLS else pl.Int32)
    data["innovation_award"] = pl.Series(v["innovation_award"].astype(str), dtype=pl.Utf8)
    return pl.DataFrame(data)


def _render(
    pop: pl.DataFrame, v: dict[str, np.ndarray], year: int, filers: np.ndarray
) -> pl.DataFrame:
    """Canonical text cells of every filer's return (one row each)."""
    sel = lambda a: a[filers]  # noqa: E731
    data: dict[str, Any] = {
        "survey_year": pl.Series([str(year)] * int(filers.sum()), dtype=pl.Utf8)
    }
    p = pop.filter(pl.Series(filers))
    for col in ("credit_code", "enterprise_name", "region_code", "industry_code", "size_class"):
        data[col] = p[col]
    ints = {c: sel(v[c]) for c in COUNT_COLS}
    for c in COUNT_COLS:
        data[c] = pl.Series(ints[c]).cast(pl.Utf8)
    for c in ("revenue", "std_spending", "financing_amount", "rd_expenditure"):
        data[c] = pl.Series(sel(v[c]))
    data["innovation_award"] = pl.Series(sel(v["innovation_award"]).astype(str))
    data["contact_name"], data["contact_phone"] = p["contact_name"], p["contact_phone"]
    data["submitted_at"] = pl.Series(sel(v["submitted_at"]).astype("datetime64[ms]")).dt.strftime(
        DT_CANON
    )
    df = pl.DataFrame(data)
    money = {
        c: pl.when(pl.col(c) >= 0).then(
            pl.concat_str(
                (pl.col(c) // 100).cast(pl.Utf8),
                pl.lit("."),
                (pl.col(c) % 100).cast(pl.Utf8).str.zfill(2),
            )
        )
        for c in ("revenue", "std_spending", "financing_amount", "rd_expenditure")
    }
    df = df.with_columns(**money).select(COLUMNS)
    return df.with_columns(
        _ent=pl.Series(np.flatnonzero(filers).astype(np.int64)),
        _outside=p["outside"],
    )


class _Year:
    """Every data row of one year before it is split into files, plus what was done to it."""

    def __init__(
        self,
        seed: int,
        year: int,
        pop: pl.DataFrame,
        previous: dict[str, dict[str, int]],
        fault_share: float,
        formats: str,
        max_rows: int,
    ):
        self.seed, self.year, self.previous = seed, year, previous
        v = _year_values(pop, seed, year)
        self.filers = v["files"]
        self.clean = _clean_values(pop, v)
        base = _render(pop, v, year, self.filers)
        n = base.height
        g = _draws(seed, "year.layout", year)
        online = g("online").random(n) < ONLINE_SHARE
        region = base["region_code"].to_numpy()
        if formats == "csv":
            home = np.array([f"city_{r[:4]}00_{year}" for r in region])
        else:
            home = np.array([f"county_{r}_{year}" for r in region])
        parts = [f"online_{year}_part{i:02d}" for i in range(1, 5)]
        self.online_groups = parts
        group = np.where(online, np.array(parts)[g("part").integers(0, 4, n)], home)
        base = base.with_columns(
            _rid=pl.Series(np.arange(n, dtype=np.int64)),
            _group=pl.Series(group),
            _order=pl.Series(g("order").random(n)),
        )
        self.groups = sorted(set(group.tolist()) | set(parts))
        self.fault: dict[int, str] = {}  # rid -> injected rule
        self.fixed: dict[int, set[str]] = {}  # rid -> columns a fault owns (no variants there)
        self.canonical: dict[int, dict] = {}  # rid -> cells before variants (for a self-check)
        self.work: dict[int, dict] = {}  # rows touched in Python, by rid
        self.next_rid = n
        self.base = base
        self._faults(fault_share)
        self._resubmissions()
        self._line_breaks()
        self._duplicates()
        self._variants()
        # Touched rows go back in place column by column (a whole-frame copy is 1 GB at 1M rows).
        touched = [r for r in sorted(self.work) if r < n]
        columns = []
        for c in base.columns:
            series = base[c]
            if touched:
                series = series.scatter(touched, [self.work[r][c] for r in touched])
            columns.append(series)
        self.base = None
        added = [self.work[r] for r in sorted(self.work) if r >= n]
        rows = pl.DataFrame(columns)
        if added:
            rows = rows.vstack(pl.DataFrame(added, schema=rows.schema))
        self.work = {}
        self.rows = rows
        self.groups = sorted(self.rows["_group"].unique().to_list())

    def _prefetch(self, rids) -> None:
        # One gather for many rows: row-at-a-time access is the slow path at a million rows.
        missing = sorted({int(r) for r in rids if r < self.base.height and r not in self.work})
        if missing:
            for row in self.base[missing].to_dicts():
                self.work[row["_rid"]] = row

    def _take(self, rid: int) -> dict:
        if rid not in self.work:
            self.work[rid] = self.base.row(rid, named=True)
        return self.work[rid]

    def _new(self, cells: dict) -> dict:
        row = dict(cells)
        row["_rid"] = self.next_rid
        self.next_rid += 1
        self.work[row["_rid"]] = row
        return row

    def _faults(self, fault_share: float) -> None:
        n = self.base.height
        self.perm = _stream(self.seed, "year.pick", self.year).permutation(n)
        n_resub = round(RESUBMIT_SHARE * n)
        self.resub_rids = [int(r) for r in self.perm[:n_resub]]
        pool = [int(r) for r in self.perm[n_resub:]]
        n_fault = round(fault_share * n)
        rules = E_RULES + ["W101", "W102", "W104", "W105", "W107"]
        if self.previous:
            rules.append("W106")
        py = _Py(_stream(self.seed, "year.faults", self.year))
        self.faulter = _Faults(self.year, py, self.previous)
        # Round-robin over the rules, so each appears even in a small year.
        order = [rules[i % len(rules)] for i in range(n_fault)]
        py.rng.shuffle(order)
        codes = self.base["credit_code"].to_list()
        inds = self.base["industry_code"].to_list()
        cursor, skipped, plan = 0, [], []
        for rule in order:
            probe = {"credit_code": None, "industry_code": None}
            chosen = None
            for j, rid in enumerate(skipped):
                probe.update(credit_code=codes[rid], industry_code=inds[rid])
                if self.faulter.eligible(rule, probe):
                    chosen = skipped.pop(j)
                    break
            while chosen is None and cursor < len(pool):
                rid = pool[cursor]
                cursor += 1
                probe.update(credit_code=codes[rid], industry_code=inds[rid])
                if self.faulter.eligible(rule, probe):
                    chosen = rid
                else:
                    skipped.append(rid)
            if chosen is not None:
                plan.append((rule, chosen))
        self._prefetch(r for _, r in plan)
        for rule, rid in plan:
            self.fixed[rid] = self.faulter.apply(rule, self._take(rid))
            self.fault[rid] = rule
        self.untouched = pool[cursor:] + skipped

    def _resubmissions(self) -> None:
        py = _Py(_stream(self.seed, "year.resubmit", self.year))
        opens = datetime(self.year + 1, 1, 1)
        self._prefetch(self.resub_rids)
        for rid in self.resub_rids:
            base = self._take(rid)
            at = datetime.strptime(base["submitted_at"], DT_CANON)
            kind = py.pick("aaaaaaabbc")
            elsewhere = py.random() < 0.5
            group = py.pick(self.online_groups) if elsewhere else base["_group"]
            if kind in "ac":
                # An earlier return with different values; the base row is its correction.
                other = self._new(base)
                self._perturb(py, other)
                if kind == "a":
                    seconds = int((at - opens).total_seconds() * (0.3 + 0.6 * py.random()))
                    other["submitted_at"] = (opens + timedelta(seconds=seconds)).strftime(DT_CANON)
                    other["_group"] = group
                else:
                    # Same submitted_at: the tie goes to the later row of the same file.
                    other["_group"] = base["_group"]
                    other["_order"] = base["_order"] - 1e-9
            else:
                # A later correction that is itself invalid: the earlier return stands.
                fix = self._new(base)
                later = min(
                    at + timedelta(seconds=py.int(3600, 10 * 86400)),
                    datetime(self.year + 1, 3, 31, 23, 0, 0),
                )
                fix["submitted_at"] = max(later, at + timedelta(seconds=1)).strftime(DT_CANON)
                fix["_group"], fix["_order"] = group, py.random()
                rule = py.pick(["E002", "E003", "E009", "E010", "E001"])
                self.fixed[fix["_rid"]] = self.faulter.apply(rule, fix)
                self.fault[fix["_rid"]] = rule

    def _perturb(self, py: _Py, c: dict) -> None:
        kind = py.int(0, 3)
        if kind == 0:
            phone = c["contact_phone"]
            c["contact_phone"] = phone[:-1] + str((int(phone[-1]) + py.int(1, 9)) % 10)
        elif kind == 1:
            spend = _cents(c["std_spending"])
            c["std_spending"] = _cents_text(
                min(_cents(c["revenue"]), spend // 2 if spend > 1 else spend + 1)
            )
            if c["std_spending"] == _cents_text(spend):
                c["contact_name"] = c["contact_name"] + "（补）"
        elif kind == 2:
            c["enterprise_declared"] = str(int(c["enterprise_declared"]) + 1)
        else:
            c["contact_name"] = c["contact_name"] + "（初报）"

    def _duplicates(self) -> None:
        py = _Py(_stream(self.seed, "year.duplicate", self.year))
        total = self.next_rid
        n_dup = round(DUPLICATE_SHARE * self.base.height)
        picks = _stream(self.seed, "year.duplicate.pick", self.year).choice(
            total, size=min(n_dup, total), replace=False
        )
        self.copies: list[int] = []
        self._prefetch(picks.tolist())
        for src in sorted(int(x) for x in picks):
            cells = self._take(src) if src < self.base.height else self.work[src]
            copy = self._new(cells)
            if py.random() < 0.5:
                copy["_group"] = py.pick(self.groups)
            copy["_order"] = py.random()
            if src in self.fault:
                self.fault[copy["_rid"]] = self.fault[src]
                self.fixed[copy["_rid"]] = self.fixed[src]
            self.copies.append(copy["_rid"])

    def _variants(self) -> None:
        py = _Py(_stream(self.seed, "year.variant", self.year))
        n = self.next_rid
        mask = _stream(self.seed, "year.variant.pick", self.year).random(n) < VARIANT_SHARE
        chosen = set(np.flatnonzero(mask).tolist())
        chosen.update(r for r in self.copies if py.random() < 0.6)
        self._prefetch(chosen)
        for rid in sorted(chosen):
            row = self._take(rid) if rid < self.base.height else self.work[rid]
            fixed = self.fixed.get(rid, set())
            self.canonical[rid] = {c: row[c] for c in COLUMNS}
            for k in py.rng.choice(len(COLUMNS), size=py.int(1, 3), replace=False):
                col = COLUMNS[int(k)]
                if col not in fixed:
                    row[col] = _variant(py, col, row[col])

    def _line_breaks(self) -> None:
        # Two contact persons on two lines of one quoted cell: it tests row numbering too.
        py = _Py(_stream(self.seed, "year.linebreak", self.year))
        count = max(3, round(0.002 * self.base.height))
        self._prefetch(self.untouched[:count])
        for rid in sorted(self.untouched[:count]):
            row = self._take(rid)
            row["contact_name"] = row["contact_name"] + "\n" + py.pick(SURNAMES) + py.pick(GIVEN)


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def _header(py: _Py, col: str, chinese: bool, fancy: float) -> str:
    meta = FORM_COLUMNS[col]
    if not chinese:
        if py.random() < fancy:
            return py.pick([f" {col}", f"{col} ", _fullwidth(col)])
        return col
    label = meta.label_zh
    # A unit in brackets only where the label does not already end in a bracket.
    if meta.unit and not label.endswith("）") and py.random() < 0.4:
        label = label + py.pick(["（{}）", "({})"]).format(meta.unit)
    if py.random() < fancy:
        label = py.pick([" {}", "{} ", "\u3000{}", " {} "]).format(label)
    return label


class _FilePlan:
    def __init__(
        self,
        name: str,
        shape: str,
        chinese: bool,
        shuffle: bool,
        zero_blank: bool,
        chinese_enums: bool,
        extra: bool,
        json_numbers: bool,
    ):
        self.name, self.shape, self.chinese, self.shuffle = name, shape, chinese, shuffle
        self.zero_blank, self.chinese_enums, self.extra = zero_blank, chinese_enums, extra
        self.json_numbers = json_numbers


def _plans(groups: list[str], seed: int, year: int, formats: str) -> dict[str, _FilePlan]:
    py = _Py(_stream(seed, "files.plan", year))
    plans = {}
    county = [g for g in groups if not g.startswith("online_")]
    forced = {}
    if formats != "csv":
        # Every shape at least once, whatever the year's size.
        order = [county[i] for i in py.rng.permutation(len(county))]
        for g, shape in zip(order, SHAPES, strict=False):
            forced[g] = shape
        extras = {order[i % len(order)] for i in (0, 2, 5)} if order else set()
    else:
        extras = {county[0]} if county else set()
    online_shapes = {0: "jsonl", 1: "xlsx", 2: "csv", 3: "jsonl"}
    for g in groups:
        if formats == "csv":
            shape = "csv"
        elif g.startswith("online_"):
            shape = online_shapes[int(g[-2:]) - 1]
        else:
            shape = forced.get(g) or SHAPES[int(py.rng.choice(5, p=[0.3, 0.2, 0.2, 0.2, 0.1]))]
        chinese = shape == "csv_gb" or (shape in ("csv_bom", "xlsx") and py.random() < 0.5)
        plans[g] = _FilePlan(
            name=g,
            shape=shape,
            chinese=chinese and formats != "csv",
            shuffle=shape == "csv_gb" or py.random() < 0.1,
            zero_blank=py.random() < 0.3,
            chinese_enums=(chinese and py.random() < 0.7) or py.random() < 0.05,
            extra=g in extras or py.random() < 0.08,
            json_numbers=not g.endswith("_part04") and py.random() < 0.8,
        )
    return plans


def _file_frame(rows: pl.DataFrame, plan: _FilePlan, py: _Py) -> tuple[pl.DataFrame, list[str]]:
    """The cells one file holds, in its column order and representation; and their headers."""
    df = rows.select(COLUMNS)  # already in file order
    if plan.zero_blank:
        zeros = [c for c in COLUMNS if FORM_COLUMNS[c].blank == "zero"]
        df = df.with_columns(
            **{
                c: pl.when(pl.col(c).is_in(["0", "0.00"])).then(None).otherwise(pl.col(c))
                for c in zeros
            }
        )
    if plan.chinese_enums:
        df = df.with_columns(
            size_class=pl.col("size_class").replace(SIZE_ZH),
            innovation_award=pl.col("innovation_award").replace(AWARD_ZH),
        )
    columns = list(COLUMNS)
    if plan.extra:
        notes = [
            None,
            None,
            None,
            None,
            None,
            "已核实",
            "数据来自财务报表，\n经负责人确认",
            "含分公司, 合并填报",
            "新增企业",
        ]
        picks = py.rng.integers(0, len(notes), df.height)
        df = df.with_columns(_extra=pl.Series([notes[i] for i in picks], dtype=pl.Utf8))
        columns.append("_extra")
    if plan.shuffle:
        columns = [columns[i] for i in py.rng.permutation(len(columns))]
    headers = []
    for col in columns:
        if col == "_extra":
            headers.append("备注" if plan.chinese or py.random() < 0.5 else "remark")
        else:
            headers.append(_header(py, col, plan.chinese, 0.15 if plan.chinese else 0.05))
    return df.select(columns), headers


_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def _typed(col: str, text: str | None, datetimes: bool) -> Any:
    """The cell an XLSX or JSON writer stores: plain numbers as numbers, else the text."""
    if text is None or col == "_extra":
        return text
    kind = FORM_COLUMNS[col].kind
    if kind in ("count", "amount", "integer") and _PLAIN_NUMBER.fullmatch(text):
        return float(text) if "." in text else int(text)
    if datetimes and col == "submitted_at":
        try:
            return datetime.strptime(text, DT_CANON)
        except ValueError:
            return text
    return text


def _write_csv(path: Path, df: pl.DataFrame, headers: list[str], shape: str) -> None:
    out = df.rename(dict(zip(df.columns, headers, strict=True)))
    if shape == "csv":
        out.write_csv(path, quote_style="necessary")
    elif shape == "csv_bom":
        out.write_csv(path, quote_style="necessary", line_terminator="\r\n", include_bom=True)
    else:
        path.write_bytes(out.write_csv(quote_style="necessary").encode("gb18030"))


def _xlsx_bytes(
    headers: list[str], rows: list[list[Any]], year: int, sheet: str, notes_sheet: bool
) -> bytes:
    buffer = io.BytesIO()
    wb = xlsxwriter.Workbook(
        buffer,
        {
            "in_memory": True,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
        },
    )
    # A fixed creation time keeps the bytes identical from run to run.
    wb.set_properties(
        {"created": datetime(year + 1, 4, 2, 9, 0, 0), "author": "浙江省市场监督管理局"}
    )
    ws = wb.add_worksheet(sheet)
    stamp = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    for c, h in enumerate(headers):
        ws.write_string(0, c, h)
    for r, values in enumerate(rows, start=1):
        for c, value in enumerate(values):
            if value is None:
                continue
            if isinstance(value, str):
                ws.write_string(r, c, value)
            elif isinstance(value, datetime):
                ws.write_datetime(r, c, value, stamp)
            else:
                ws.write_number(r, c, value)
    if notes_sheet:
        wb.add_worksheet("填表说明").write_string(0, 0, "金额单位：万元；计数单位：项/人/个/件")
    wb.close()
    return buffer.getvalue()


def _write_file(
    folder: Path, plan: _FilePlan, rows: pl.DataFrame, py: _Py, year: int, want_cells: bool
) -> tuple[str, list[dict[str, Any]] | None, int]:
    """Writes one landing file; returns its name, its cells as written (for the oracle), rows."""
    df, headers = _file_frame(rows, plan, py)
    name = plan.name + "." + EXT[plan.shape]
    path = folder / name
    cols = df.columns
    cells: list[dict[str, Any]] | None = None
    if plan.shape in ("csv", "csv_bom", "csv_gb"):
        _write_csv(path, df, headers, plan.shape)
        if want_cells:
            cells = [dict(zip(cols, r, strict=True)) for r in df.iter_rows()]
    elif plan.shape == "xlsx":
        typed = [[_typed(c, x, True) for c, x in zip(cols, r, strict=True)] for r in df.iter_rows()]
        path.write_bytes(
            _xlsx_bytes(headers, typed, year, py.pick(["Sheet1", "填报数据"]), py.random() < 0.3)
        )
        cells = [dict(zip(cols, r, strict=True)) for r in typed] if want_cells else None
    else:
        keys = [("remark" if c == "_extra" else c) for c in cols]
        lines, typed_rows = [], []
        for r in df.iter_rows():
            if plan.json_numbers:
                values = [_typed(c, x, False) for c, x in zip(cols, r, strict=True)]
            else:
                values = ["" if x is None else x for x in r]
            typed_rows.append(values)
            lines.append(json.dumps(dict(zip(keys, values, strict=True)), ensure_ascii=False))
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        cells = [dict(zip(cols, r, strict=True)) for r in typed_rows] if want_cells else None
    return name, cells, df.height


# ---------------------------------------------------------------------------------------------
# Damaged files, one per F rule (and its variants)
# ---------------------------------------------------------------------------------------------


def _csv_text(headers: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(headers)
    w.writerows([["" if x is None else x for x in r] for r in rows])
    return out.getvalue()


def _rezip(data: bytes, extra: tuple[str, bytes] | None) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            z.writestr(
                zipfile.ZipInfo(info.filename, (1980, 1, 1, 0, 0, 0)),
                src.read(info.filename),
                compress_type=zipfile.ZIP_DEFLATED,
            )
        if extra:
            z.writestr(
                zipfile.ZipInfo(extra[0], (1980, 1, 1, 0, 0, 0)),
                extra[1],
                compress_type=zipfile.ZIP_DEFLATED,
                compresslevel=9,
            )
    return out.getvalue()


def _damaged(
    folder: Path, rows: pl.DataFrame, year: int, formats: str, max_rows: int, seed: int
) -> list[tuple[str, str]]:
    py = _Py(_stream(seed, "files.damaged", year))
    sample = rows.select(COLUMNS)
    body = [list(r) for r in sample.iter_rows()] or [[str(year)] + [None] * (len(COLUMNS) - 1)]
    counties = reference.county_codes()
    pick = [counties[i] for i in py.rng.permutation(len(counties))[:10]]
    prefix = "city" if formats == "csv" else "county"

    def stem(i: int, tag: str) -> str:
        office = pick[i][:4] + "00" if formats == "csv" else pick[i]
        return f"{prefix}_{office}_{year}_{tag}"

    written: list[tuple[str, str]] = []

    def put(name: str, data: bytes, rule: str) -> None:
        (folder / name).write_bytes(data)
        written.append((name, rule))

    # F303: a required column missing; separately, one header twice.
    keep = [c for c in COLUMNS if c != "contact_phone"]
    put(
        stem(0, "supplement") + ".csv",
        _csv_text(keep, [[r[COLUMNS.index(c)] for c in keep] for r in body[:15]]).encode(),
        "F303",
    )
    twice = COLUMNS[:8] + ["revenue"] + COLUMNS[8:]
    put(
        stem(1, "v2") + ".csv",
        _csv_text(twice, [r[:8] + [r[7]] + r[8:] for r in body[:12]]).encode(),
        "F303",
    )
    # F304: the header and nothing else.
    put(stem(2, "resend") + ".csv", _csv_text(COLUMNS, []).encode(), "F304")
    # F306: a row with more fields than the header.
    wide = [list(r) for r in body[:20]]
    wide[min(5, len(wide) - 1)] += ["补充说明", ""]
    put(stem(3, "fixed") + ".csv", _csv_text(COLUMNS, wide).encode(), "F306")
    # F305: one data row over the limit. Rows need only be rows (a year and empty cells):
    # 38 bytes each keeps a million of them cheap to write and to count.
    cheap = f"{year}" + "," * (len(COLUMNS) - 1) + "\n"
    name = f"online_{year}_full_dump.csv"
    with open(folder / name, "wb") as f:
        f.write((",".join(COLUMNS) + "\n").encode())
        block = cheap.encode() * 100_000
        left = max_rows + 1
        while left > 0:
            take = min(left, 100_000)
            f.write(block if take == 100_000 else cheap.encode() * take)
            left -= take
    written.append((name, "F305"))
    if formats == "csv":
        return written
    # F301: content that is not CSV/XLSX/JSONL whatever the name says.
    pdf = (
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
        b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )
    put(stem(4, "scan") + ".csv", pdf, "F301")
    ole = bytes.fromhex("D0CF11E0A1B11AE1") + bytes(16) + bytes.fromhex("3E000300FEFF0900")
    put(stem(5, "old") + ".xls", ole + bytes(4096 - len(ole)), "F301")
    # F302: UTF-16 with a BOM is neither UTF-8 nor GB18030.
    zh = [FORM_COLUMNS[c].label_zh for c in COLUMNS]
    put(stem(6, "export") + ".csv", _csv_text(zh, body[:10]).encode("utf-16"), "F302")
    # F306: a truncated XLSX, and one whose members expand past 100x the file.
    good = _xlsx_bytes(
        COLUMNS,
        [[_typed(c, x, True) for c, x in zip(COLUMNS, r, strict=True)] for r in body[:30]],
        year,
        "Sheet1",
        False,
    )
    put(stem(7, "final") + ".xlsx", good[: len(good) * 3 // 5], "F306")
    put(
        stem(8, "backup") + ".xlsx",
        _rezip(good, ("xl/media/image1.bin", bytes(6 * 1024 * 1024))),
        "F306",
    )
    # F307: a folder copied into landing whole, a county's returns inside; never read.
    attachments = folder / stem(9, _ATTACHMENTS.lstrip("_"))
    attachments.mkdir()
    (attachments / "returns.csv").write_bytes(_csv_text(COLUMNS, body[:18]).encode())
    written.append((attachments.name, "F307"))
    return written


# ---------------------------------------------------------------------------------------------
# Truth across years
# ---------------------------------------------------------------------------------------------

# Beside the truth: the accepted counts of the year, read back as "last year" for rule W106.
ACCEPTED_COUNTS = "accepted_counts.csv"
TRUTH_FILES = (
    "truth_rows.csv",
    "truth_files.csv",
    "truth_no_return.csv",
    "truth_population.csv",
    "truth_frame.csv",
    ACCEPTED_COUNTS,
)


def _previous_counts(data_dir: Path, year: int) -> dict[str, dict[str, int]]:
    """Last year's accepted counts, when the caller processed last year (its truth exists)."""
    folder = data_dir / "synth" / str(year - 1)
    if not (folder / "truth_rows.csv").exists():
        return {}
    sidecar = folder / ACCEPTED_COUNTS
    if not sidecar.exists():
        raise FileNotFoundError(
            f"{sidecar} is missing: regenerate year {year - 1} with truth=True before year {year}"
        )
    out = {}
    with open(sidecar, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            out[row["credit_code"]] = {c: int(row[c]) for c in COUNT_COLS}
    return out


def _write_table(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


# ---------------------------------------------------------------------------------------------
# What the generator wrote: only those files, unchanged, may it replace or delete
# ---------------------------------------------------------------------------------------------

# Outside landing/<year>, where anything is a received file. Paths relative to the data dir.
LEDGER = "written.json"
# A year is written here first and moved into place once whole: an interrupted run leaves
# landing/<year> as it was, or holding only files the ledger lists.
STAGING = ".writing"
NOT_WRITTEN, CHANGED = "not written by the generator", "changed since the generator wrote it"


class ForeignFiles(Exception):
    """Files the generator would replace or delete but did not write, or that changed since."""


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _ledger_path(data_dir: Path, year: int) -> Path:
    return data_dir / "synth" / str(year) / LEDGER


def _ledger(data_dir: Path, year: int) -> dict[str, str]:
    """Relative path -> sha256 of every file the last run of the year wrote."""
    path = _ledger_path(data_dir, year)
    return json.loads(path.read_text(encoding="utf-8"))["files"] if path.exists() else {}


def _not_ours(data_dir: Path, year: int, written: dict[str, str]) -> list[tuple[Path, str]]:
    """What stands where the year goes and is not a file the ledger lists, unchanged: every
    entry of landing/<year> (links, folders and pipes too), the frame and the truth files."""
    found = []

    def judge(path: Path) -> None:
        rel = path.relative_to(data_dir).as_posix()
        mode = path.lstat().st_mode
        if stat.S_ISDIR(mode) and any(w.startswith(rel + "/") for w in written):
            for child in sorted(path.iterdir()):
                judge(child)
        elif rel not in written or not stat.S_ISREG(mode):
            found.append((path, NOT_WRITTEN))
        elif _sha256(path) != written[rel]:
            found.append((path, CHANGED))

    landing = data_dir / "landing" / str(year)
    if landing.is_dir():
        for path in sorted(landing.iterdir()):
            judge(path)
    synth = data_dir / "synth" / str(year)
    for path in [data_dir / "frame" / f"{year}.csv", *(synth / name for name in TRUTH_FILES)]:
        if os.path.lexists(path):
            judge(path)
    return found


def _refuse_foreign(data_dir: Path, year: int, written: dict[str, str]) -> None:
    found = _not_ours(data_dir, year, written)
    if not found:
        return
    folders: dict[Path, list[str]] = {}
    for path, why in found:
        folders.setdefault(path.parent, []).append(f"{path.name} ({why})")
    shown = "; ".join(f"{folder} holds {', '.join(names)}" for folder, names in folders.items())
    raise ForeignFiles(
        f"refusing to write synthetic year {year}, which would replace or delete files the "
        f"generator did not write ({_ledger_path(data_dir, year)} lists those it did): {shown}. "
        "Move them away (delete them if they are an earlier synthetic year) and run again"
    )


def _remove_written(data_dir: Path, written: dict[str, str]) -> None:
    """Delete the files of the last run (checked unchanged just before), and the folders
    they alone filled."""
    for rel in sorted(written):
        path = data_dir / rel
        path.unlink(missing_ok=True)
        for parent in path.parents:
            if parent == data_dir or len(parent.relative_to(data_dir).parts) < 3:
                break  # landing/<year>, synth/<year> and frame/ stay
            try:
                parent.rmdir()
            except OSError:
                break  # not empty


def _move_into_place(staging: Path, data_dir: Path, year: int) -> None:
    """Record every staged file, then move each to its place under data_dir."""
    staged = sorted(p for p in staging.rglob("*") if p.is_file())
    written = {p.relative_to(staging).as_posix(): _sha256(p) for p in staged}
    ledger = _ledger_path(data_dir, year)
    ledger.parent.mkdir(parents=True, exist_ok=True)
    part = ledger.with_name(LEDGER + ".part")
    part.write_text(json.dumps({"files": written}, indent=1, sort_keys=True) + "\n", "utf-8")
    os.replace(part, ledger)
    for path in staged:
        target = data_dir / path.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(target):  # arrived while the year was being written
            raise ForeignFiles(f"{target} appeared while synthetic year {year} was written: "
                               "move it away and run again")
        shutil.move(path, target)


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def synthesize(
    year: int,
    enterprises: int = 50_000,
    seed: int = 1,
    data_dir: Path | str = Path("data"),
    *,
    fault_share: float = 0.05,
    formats: str = "all",
    max_rows: int = 1_000_000,
    truth: bool = True,
) -> dict:
    """Write one survey year's landing files, frame and (optionally) truth under data_dir.

    Deterministic for (year, enterprises, seed, fault_share, formats, max_rows) and whether
    data_dir/synth/<year-1>/truth_rows.csv exists (then W106 jumps are injected and judged).
    Replaces only what an earlier run wrote (synth/<year>/written.json) and nobody changed
    since; raises ForeignFiles, touching nothing, when anything else is in the way.
    """
    if formats not in ("all", "csv"):
        raise ValueError("formats must be 'all' or 'csv'")
    if enterprises < 1:
        raise ValueError("enterprises must be 1 or more")
    started = time.perf_counter()
    data_dir = Path(data_dir)
    written = _ledger(data_dir, year)
    _refuse_foreign(data_dir, year, written)  # before minutes of work, not only after
    previous = _previous_counts(data_dir, year)
    # The year is written into a staging copy of the data dir's layout, a folder of ours.
    staging = data_dir / "synth" / str(year) / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    try:
        summary = _write_year(
            staging, year, enterprises, seed, previous, fault_share, formats, max_rows, truth
        )
        # Checked again: a person may have dropped or edited a file meanwhile. Without truth,
        # an earlier run's truth files go too: they describe other files (its counts W106).
        _refuse_foreign(data_dir, year, written)
        _remove_written(data_dir, written)
        _move_into_place(staging, data_dir, year)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    summary["seconds"] = round(time.perf_counter() - started, 2)
    return summary


def _write_year(
    staging: Path,
    year: int,
    enterprises: int,
    seed: int,
    previous: dict[str, dict[str, int]],
    fault_share: float,
    formats: str,
    max_rows: int,
    truth: bool,
) -> dict:
    """The year's landing files, frame and truth, under staging as under the data dir."""
    landing = staging / "landing" / str(year)
    landing.mkdir(parents=True)
    pop = _population(seed, enterprises)
    frame_dir = staging / "frame"
    frame_dir.mkdir()
    frame, frame_rejected = _frame(pop, seed)
    frame.write_csv(frame_dir / f"{year}.csv", quote_style="necessary")
    del frame

    frame_codes = pop["credit_code"]
    y = _Year(seed, year, pop, previous, fault_share, formats, max_rows)
    del pop
    plans = _plans(y.groups, seed, year, formats)
    py = _Py(_stream(seed, "files.write", year))
    files: list[tuple[str, str, str, int | None]] = []  # name, status, rule, rows
    per_file: list[tuple[str, list[int], list[dict] | None]] = []
    sample = y.rows.head(40)
    outside = y.rows.select("_rid", "_outside")
    ordered = y.rows.sort("_group", "_order", "_rid")
    y.rows = None  # one copy of the year's rows at a time
    bounds = ordered.group_by("_group", maintain_order=True).len()
    start = 0
    for group, length in bounds.iter_rows():
        part = ordered.slice(start, length)
        start += length
        # Exports are chunked so that no ordinary file trips the row limit (F305 is on purpose).
        chunks = [part[i : i + max_rows] for i in range(0, part.height, max_rows)]
        for k, chunk in enumerate(chunks):
            plan = plans[group]
            if len(chunks) > 1:
                plan = _FilePlan(**{**plan.__dict__, "name": f"{group}_p{k + 1}"})
            name, cells, count = _write_file(landing, plan, chunk, py, year, truth)
            files.append((name, "read", "", count))
            per_file.append((name, chunk["_rid"].to_list(), cells))
    del ordered
    for name, rule in _damaged(landing, sample, year, formats, max_rows, seed):
        files.append((name, "quarantined", rule, None))

    summary = {
        "year": year,
        "enterprises": enterprises,
        "files": len(files),
        "rows": sum(f[3] or 0 for f in files),
        "quarantined": sum(f[3] is None for f in files),
        "frame_rejected": frame_rejected.height,
        "non_filers": int((~y.filers).sum()),
    }
    if truth:
        summary.update(
            _truth(
                staging, year, y, outside, frame_codes, frame_rejected, previous, files, per_file
            )
        )
    return summary


def _truth(
    data_dir: Path,
    year: int,
    y: _Year,
    outside: pl.DataFrame,
    frame_codes: pl.Series,
    frame_rejected: pl.DataFrame,
    previous: dict,
    files: list,
    per_file: list,
) -> dict:
    oracle = Oracle(year, previous)
    judged = []  # (file, row, found, key, values, rid)
    for name, rids, cells in sorted(per_file, key=lambda t: t[0]):
        first = 1 if name.endswith(".jsonl") else 2
        for i, (rid, row) in enumerate(zip(rids, cells, strict=True)):
            found, key, values = oracle.check(row)
            judged.append((name, i + first, found, key, values, rid))
    decided = decide([j[:5] for j in judged])

    # Self-checks (kept under python -O too): every injected fault fired; clean rows raise
    # nothing but their W103; representation variants really preserve the typed values.
    outside = dict(outside.iter_rows())
    for name, row, found, key, _, rid in judged:
        rule = y.fault.get(rid)
        if rule is not None and rule not in found:
            raise RuntimeError(f"{name}:{row} injected {rule}, oracle found {sorted(found)}")
        if rule is None and found != ({"W103"} if outside[rid] else set()):
            raise RuntimeError(f"{name}:{row} clean row, oracle found {sorted(found)}")
        if rid in y.canonical:
            _, ckey, _ = oracle.check(y.canonical[rid])
            changed = [(c, a, b) for c, a, b in zip(COLUMNS, ckey, key, strict=True) if a != b]
            if changed:
                raise RuntimeError(f"{name}:{row}: a representation variant changed {changed}")

    synth = data_dir / "synth" / str(year)
    synth.mkdir(parents=True, exist_ok=True)
    _write_table(
        synth / "truth_rows.csv",
        ["source_file", "source_row", "outcome", "rule_ids"],
        [[j[0], j[1], o, ids] for j, (o, ids) in zip(judged, decided, strict=True)],
    )
    _write_table(
        synth / "truth_files.csv",
        ["source_file", "status", "rule", "rows"],
        [[n, s, r, "" if c is None else c] for n, s, r, c in sorted(files)],
    )
    accepted = {
        j[4]["credit_code"]: j[4]
        for j, (o, _) in zip(judged, decided, strict=True)
        if o == "accepted"
    }
    frame_rejected.write_csv(synth / "truth_frame.csv")
    _population_truth(y.clean, accepted).write_csv(synth / "truth_population.csv")
    y.clean = None
    frame_codes = frame_codes.to_list()
    _write_table(
        synth / "truth_no_return.csv",
        ["credit_code"],
        [[c] for c in sorted(c for c in frame_codes if c not in accepted)],
    )
    _write_table(
        synth / ACCEPTED_COUNTS,
        ["credit_code", *COUNT_COLS],
        [[c, *(accepted[c][k] for k in COUNT_COLS)] for c in sorted(accepted)],
    )
    outcomes = Counter(o for o, _ in decided)
    rules = Counter(r for _, ids in decided for r in ids.split(";") if r)
    rules.update(r for _, s, r, _ in files if r)
    return {
        "outcomes": dict(sorted(outcomes.items())),
        "rules": dict(sorted(rules.items())),
        "no_return": sum(1 for c in frame_codes if c not in accepted),
    }


def _population_truth(clean: pl.DataFrame, accepted: dict[str, dict]) -> pl.DataFrame:
    """One row per frame enterprise: its accepted return's values as the oracle typed them,
    else what it would have reported (clean values). Sums over it are the whole-frame truth."""
    columns = ["credit_code", *MAGNITUDES, "innovation_award"]
    schema = {c: pl.Float64 if c in AMOUNT_COLS else pl.Int32 for c in MAGNITUDES}
    get = itemgetter(*columns)  # one C call per return, not one Python loop per column
    got = pl.DataFrame(
        [get(v) for v in accepted.values()],
        schema={"credit_code": pl.Utf8, **schema, "innovation_award": pl.Utf8},
        orient="row",
    )
    # Typed amounts are rounded to 2 decimals, so their cents are whole.
    got = got.with_columns(
        (pl.col(c) * 100).round(0).cast(pl.Int64) for c in MAGNITUDES if c in AMOUNT_COLS
    )
    stray = got.join(clean, on="credit_code", how="anti")
    if stray.height:
        raise RuntimeError(f"accepted returns of enterprises not in the frame: {stray.height}")
    got = got.join(clean.select("credit_code", "files"), on="credit_code")
    rest = clean.join(got.select("credit_code"), on="credit_code", how="anti")
    table = pl.concat(
        [
            got.with_columns(accepted=pl.lit(1, pl.Int8)),
            rest.with_columns(accepted=pl.lit(0, pl.Int8)),
        ],
        how="diagonal",
    )
    money = {
        c: pl.concat_str(
            (pl.col(c) // 100).cast(pl.Utf8),
            pl.lit("."),
            (pl.col(c) % 100).cast(pl.Utf8).str.zfill(2),
        )
        for c in MAGNITUDES
        if c in AMOUNT_COLS
    }
    return (
        table.with_columns(files=pl.col("files").cast(pl.Int8), **money)
        .select("credit_code", "files", "accepted", *MAGNITUDES, "innovation_award")
        .sort("credit_code")
    )


def _positive(text: str) -> int:
    value = int(text) if text.strip().lstrip("-").isdigit() else None
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of 1 or more, not {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.synth", description=__doc__)
    parser.add_argument("--year", type=int, required=True)
    parser.add_argument("--enterprises", type=_positive, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fault-share", type=float, default=0.05)
    parser.add_argument("--formats", choices=("all", "csv"), default="all")
    parser.add_argument("--data-dir", type=Path, help="data root (default $SURVEY_DATA_DIR "
                        "or ./data)")
    parser.add_argument("--max-rows", type=int, default=1_000_000,
                        help="rows per file: exports are split below it, the F305 file is over")
    parser.add_argument("--no-truth", action="store_true", help="no truth files (faster)")
    args = parser.parse_args(argv)
    try:
        data_dir = args.data_dir or Settings.from_env().data_dir
        summary = synthesize(
            args.year,
            args.enterprises,
            args.seed,
            data_dir,
            fault_share=args.fault_share,
            formats=args.formats,
            max_rows=args.max_rows,
            truth=not args.no_truth,
        )
    except (ForeignFiles, SurveyError) as e:  # a sentence to act on, not a traceback
        print(f"python -m devtools.synth: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
