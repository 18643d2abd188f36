"""Every function in ``kdlab.losses``: a stored golden value, a case checked by hand, and its properties.

Golden values live in ``tests/golden/losses.json`` and are only rewritten by ``pytest --update-golden``; the
hand-checked cases below are literal numbers or plain-Python loop transcriptions of the papers' formulas.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import kdlab.losses as L

GOLDEN_FILE = Path(__file__).parent / "golden" / "losses.json"
RTOL, ATOL = 1e-7, 1e-10  # float64 inputs: only summation order can differ between machines


def randn(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def unit(seed: int, *shape: int) -> torch.Tensor:
    return F.normalize(randn(seed, *shape), dim=-1)


TARGET = torch.tensor([0, 1, 2, 3, 4, 0])


def logits(**extra: Any) -> Callable[[], dict[str, Any]]:
    return lambda: {"student_logits": randn(0, 6, 5), "teacher_logits": randn(1, 6, 5), **extra}


def pair(student_key: str, teacher_key: str, student_shape: tuple, teacher_shape: tuple) -> Callable[[], dict]:
    return lambda: {student_key: randn(2, *student_shape), teacher_key: randn(3, *teacher_shape)}


@dataclass(frozen=True)
class Case:
    """Seeded float64 inputs for one function, and which of them play student and teacher."""

    make: Callable[[], dict[str, Any]]
    student: str | None = None  # input that must receive a gradient
    teacher: str | None = None  # input that must not (the teacher's) — or must, when teacher_trainable
    teacher_trainable: bool = False  # CC: the teacher-side input is a trainable embedding's output
    zero_when_equal: bool = True  # the loss vanishes when the student input equals the teacher input
    equal_tol: float = 1e-7  # how close to 0 it gets then
    function: str | None = None  # the kdlab.losses function, when the case's name is not its name
    standardize: bool = False  # the logits go through L.standardize_logits first (logit standardization, LS)
    summary: Callable[[torch.Tensor], torch.Tensor] | None = None  # a scalar of a tensor-valued function's output


def projection(out: torch.Tensor) -> torch.Tensor:
    """A scalar that changes when any entry of ``out`` does: its dot product with a fixed random tensor."""
    return (out * randn(99, *out.shape)).sum()


LOGIT_KEYS = {"student": "student_logits", "teacher": "teacher_logits"}
CASES: dict[str, Case] = {
    "kd_kl": Case(logits(temperature=4.0), **LOGIT_KEYS),
    "top1_agreement": Case(logits(), zero_when_equal=False),
    "dkd_tckd": Case(logits(target=TARGET, temperature=4.0), **LOGIT_KEYS),
    "dkd_nckd": Case(logits(target=TARGET, temperature=4.0), **LOGIT_KEYS),
    "dkd": Case(logits(target=TARGET, alpha=1.0, beta=8.0, temperature=4.0), **LOGIT_KEYS),
    "kd_reverse_kl": Case(logits(temperature=4.0), **LOGIT_KEYS),
    "kd_js": Case(logits(temperature=4.0), **LOGIT_KEYS),
    "standardize_logits": Case(lambda: {"logits": randn(0, 6, 5)}, zero_when_equal=False, summary=projection),
    "kd_kl+ls": Case(logits(temperature=2.0), **LOGIT_KEYS, function="kd_kl", standardize=True),
    "dkd+ls": Case(
        logits(target=TARGET, alpha=9.0, beta=72.0, temperature=2.0), **LOGIT_KEYS, function="dkd", standardize=True
    ),
    "dist+ls": Case(logits(temperature=2.0), **LOGIT_KEYS, function="dist", standardize=True, equal_tol=1e-4),
    "dml_kl": Case(
        lambda: {"logits": randn(0, 6, 5), "peer_logits": [randn(1, 6, 5), randn(2, 6, 5)]},
        "logits",
        "peer_logits",  # the peers' predictions are constants in member k's loss
        zero_when_equal=False,  # peers is a list: test_dml_kl_by_hand checks that equal peers give 0
    ),
    "tf_kd_virtual_teacher": Case(
        lambda: {"student_logits": randn(0, 6, 5), "target": TARGET, "temperature": 20.0, "correct_prob": 0.99},
        student="student_logits",
        zero_when_equal=False,
    ),
    "cs_kd": Case(
        lambda: {"logits": randn(0, 6, 5), "partner_logits": randn(1, 6, 5), "temperature": 4.0},
        student="logits",
        teacher="partner_logits",  # the class-mate's prediction is a constant target
    ),
    "deit_hard_distillation": Case(
        lambda: {"dist_logits": randn(0, 6, 5), "teacher_logits": randn(1, 6, 5)},
        student="dist_logits",
        teacher="teacher_logits",
        zero_when_equal=False,  # a cross-entropy to the teacher's argmax stays > 0
    ),
    "deit_soft_distillation": Case(
        lambda: {"dist_logits": randn(0, 6, 5), "teacher_logits": randn(1, 6, 5), "temperature": 3.0},
        student="dist_logits",
        teacher="teacher_logits",
    ),
    "review_hcl": Case(
        lambda: {
            "student_feats": [randn(2, 2, 3, 8, 8), randn(4, 2, 3, 4, 4), randn(6, 2, 3, 1, 1)],
            "teacher_feats": [randn(3, 2, 3, 8, 8), randn(5, 2, 3, 4, 4), randn(7, 2, 3, 1, 1)],
        },
        "student_feats",
        "teacher_feats",
    ),
    # DIST's ρ = ‖a‖² / (‖a‖² + 1e-8) < 1 for equal inputs, and the softmax columns at T = 4 vary little.
    "dist": Case(logits(temperature=4.0, beta=1.0, gamma=1.0), **LOGIT_KEYS, equal_tol=1e-4),
    "hint_mse": Case(pair("student_feat", "teacher_feat", (4, 3, 4, 4), (4, 3, 4, 4)), "student_feat", "teacher_feat"),
    "attention_transfer": Case(
        pair("student_feat", "teacher_feat", (4, 3, 8, 8), (4, 5, 4, 4)), "student_feat", "teacher_feat"
    ),
    "nst": Case(pair("student_feat", "teacher_feat", (4, 3, 8, 8), (4, 5, 4, 4)), "student_feat", "teacher_feat"),
    "patient_loss": Case(
        lambda: {"student_feats": [randn(2, 4, 6), randn(4, 4, 3)], "teacher_feats": [randn(3, 4, 6), randn(5, 4, 3)]},
        "student_feats",
        "teacher_feats",
    ),
    "rkd_distance": Case(pair("student_emb", "teacher_emb", (5, 7), (5, 9)), "student_emb", "teacher_emb"),
    "rkd_angle": Case(pair("student_emb", "teacher_emb", (5, 7), (5, 9)), "student_emb", "teacher_emb"),
    "similarity_preserving": Case(
        pair("student_feat", "teacher_feat", (4, 3, 2, 2), (4, 5, 2, 2)), "student_feat", "teacher_feat"
    ),
    "pkt": Case(pair("student_emb", "teacher_emb", (5, 7), (5, 9)), "student_emb", "teacher_emb"),
    "cc": Case(
        pair("student_emb", "teacher_emb", (5, 8), (5, 8)), "student_emb", "teacher_emb", teacher_trainable=True
    ),
    "crd_nce": Case(
        lambda: {
            "anchor": unit(6, 4, 8),
            "contrast": unit(7, 4, 6, 8),
            "temperature": 0.07,
            "normaliser": 3.0e4,
            "num_data": 100,
        },
        "anchor",
        "contrast",  # the memory bank rows: no gradient
        zero_when_equal=False,  # NCE has no "student equals teacher" minimum
    ),
}


def apply(name: str, kwargs: dict[str, Any]) -> torch.Tensor:
    """Call case ``name``'s function on ``kwargs`` (standardizing the logits first for an LS case)."""
    case = CASES[name]
    if case.standardize:
        kwargs = {**kwargs, **{k: L.standardize_logits(kwargs[k]) for k in LOGIT_KEYS.values()}}
    out = getattr(L, case.function or name)(**kwargs)
    return case.summary(out) if case.summary else out


def call(name: str, **overrides: Any) -> torch.Tensor:
    kwargs = CASES[name].make()
    kwargs.update(overrides)
    return apply(name, kwargs)


@pytest.fixture(scope="module")
def update_golden(request: pytest.FixtureRequest) -> bool:
    return request.config.getoption("--update-golden")


def read_golden() -> dict[str, float]:
    return json.loads(GOLDEN_FILE.read_text()) if GOLDEN_FILE.exists() else {}


def test_every_exported_function_has_a_case():
    functions = {case.function or name for name, case in CASES.items()}
    assert functions == set(L.__all__), "add a Case (and a hand-checked test) for every function in kdlab.losses"


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_value(name: str, update_golden: bool):
    value = float(call(name))
    assert math.isfinite(value)
    golden = read_golden()
    if update_golden:
        golden[name] = value
        GOLDEN_FILE.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN_FILE.write_text(json.dumps(dict(sorted(golden.items())), indent=2) + "\n")
        return
    assert name in golden, f"no golden value for {name}: run pytest {__file__} --update-golden and review the diff"
    assert value == pytest.approx(golden[name], rel=RTOL, abs=ATOL)


def test_golden_file_has_no_stale_entries(update_golden: bool):
    if not update_golden:
        assert set(read_golden()) <= set(CASES)


# ---------------------------------------------------------------------------------------------- properties


def _as_leaf(value: Any) -> Any:
    if isinstance(value, list):
        return [v.clone().requires_grad_(True) for v in value]
    return value.clone().requires_grad_(True)


def _grads(value: Any) -> list[torch.Tensor | None]:
    return [v.grad for v in value] if isinstance(value, list) else [value.grad]


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.student))
def test_gradient_reaches_student_and_not_teacher(name: str):
    case = CASES[name]
    kwargs = case.make()
    kwargs[case.student] = _as_leaf(kwargs[case.student])
    if case.teacher is not None:
        kwargs[case.teacher] = _as_leaf(kwargs[case.teacher])
    apply(name, kwargs).backward()
    for grad in _grads(kwargs[case.student]):
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    for grad in _grads(kwargs[case.teacher]) if case.teacher is not None else []:
        if case.teacher_trainable:
            assert grad is not None and grad.abs().sum() > 0
        else:
            assert grad is None


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.zero_when_equal))
def test_zero_when_student_equals_teacher(name: str):
    case = CASES[name]
    kwargs = case.make()
    kwargs[case.teacher] = kwargs[case.student]
    assert float(apply(name, kwargs)) == pytest.approx(0.0, abs=case.equal_tol)


def test_top1_agreement_is_one_when_equal():
    s = randn(0, 6, 5)
    assert float(L.top1_agreement(s, s)) == 1.0


def test_crd_nce_prefers_the_positive():
    """The NCE loss falls as the anchor moves towards its positive memory row."""
    kwargs = CASES["crd_nce"].make()
    towards = F.normalize(kwargs["anchor"] + 2 * kwargs["contrast"][:, 0], dim=1)
    assert float(L.crd_nce(**{**kwargs, "anchor": towards})) < float(L.crd_nce(**kwargs))


# ---------------------------------------------------------------------------------------------- by hand


def softmax(xs: list[float]) -> list[float]:
    top = max(xs)
    exps = [math.exp(x - top) for x in xs]
    return [e / sum(exps) for e in exps]


def kl(p: list[float], q: list[float]) -> float:
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True) if pi > 0)


def huber_mean(a: list[float], b: list[float]) -> float:
    diffs = [abs(x - y) for x, y in zip(a, b, strict=True)]
    return sum(0.5 * d * d if d < 1 else d - 0.5 for d in diffs) / len(diffs)


def t64(values: Any) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


S3 = [[1.0, 2.0, 0.0], [0.0, 1.0, 3.0]]
T3 = [[2.0, 1.0, 0.0], [1.0, 1.0, 1.5]]


def test_kd_kl_by_hand():
    # p_t = (3/4, 1/4), p_s = (1/2, 1/2): KL = 3/4·ln(3/2) + 1/4·ln(1/2) = 0.1308120...
    s, t = t64([[0.0, 0.0]]), t64([[math.log(3.0), 0.0]])
    expected = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert float(L.kd_kl(s, t, 1.0)) == pytest.approx(expected, rel=1e-12)
    # Same distributions at T = 2 (logits doubled): the loss is exactly T² = 4 times larger.
    assert float(L.kd_kl(2 * s, 2 * t, 2.0)) == pytest.approx(4 * expected, rel=1e-12)


def test_kd_kl_is_t_squared_times_batchmean_kl():
    temperature = 2.0
    by_hand = sum(
        kl(softmax([x / temperature for x in t]), softmax([x / temperature for x in s]))
        for s, t in zip(S3, T3, strict=True)
    )
    expected = temperature**2 * by_hand / len(S3)
    assert float(L.kd_kl(t64(S3), t64(T3), temperature)) == pytest.approx(expected, rel=1e-12)


def test_top1_agreement_by_hand():
    # argmax student = (1, 0), teacher = (1, 1): one of two agree.
    assert float(L.top1_agreement(t64([[1.0, 2.0], [3.0, 0.0]]), t64([[0.0, 1.0], [0.0, 1.0]]))) == 0.5


def dkd_by_hand(s_rows, t_rows, targets, temperature):
    tckd = nckd = 0.0
    for s, t, g in zip(s_rows, t_rows, targets, strict=True):
        p_s = softmax([x / temperature for x in s])
        p_t = softmax([x / temperature for x in t])
        tckd += kl([p_t[g], 1 - p_t[g]], [p_s[g], 1 - p_s[g]])
        others_s = softmax([x / temperature for c, x in enumerate(s) if c != g])
        others_t = softmax([x / temperature for c, x in enumerate(t) if c != g])
        nckd += kl(others_t, others_s)
    scale = temperature**2 / len(s_rows)
    return tckd * scale, nckd * scale


def test_dkd_by_hand():
    targets = [0, 2]
    tckd, nckd = dkd_by_hand(S3, T3, targets, 2.0)
    args = (t64(S3), t64(T3), torch.tensor(targets))
    assert float(L.dkd_tckd(*args, 2.0)) == pytest.approx(tckd, rel=1e-12)
    assert float(L.dkd_nckd(*args, 2.0)) == pytest.approx(nckd, rel=1e-12)
    assert float(L.dkd(*args, alpha=1.0, beta=8.0, temperature=2.0)) == pytest.approx(tckd + 8 * nckd, rel=1e-12)


def test_dkd_decomposes_classical_kd():
    """DKD paper, Eq. 5: per sample, KD = TCKD + (1 − p_t[gt]) · NCKD."""
    for s, t, gt in zip(S3, T3, [1, 2], strict=True):
        args = (t64([s]), t64([t]), torch.tensor([gt]))
        p_t_gt = softmax([x / 3.0 for x in t])[gt]
        coupled = L.dkd_tckd(*args, 3.0) + (1 - p_t_gt) * L.dkd_nckd(*args, 3.0)
        assert float(L.kd_kl(t64([s]), t64([t]), 3.0)) == pytest.approx(float(coupled), rel=1e-12)


def pearson(a: list[float], b: list[float]) -> float:
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    norm_a = math.sqrt(sum((x - ma) ** 2 for x in a))
    norm_b = math.sqrt(sum((y - mb) ** 2 for y in b))
    return cov / (norm_a * norm_b + 1e-8)


def test_dist_by_hand():
    s_rows = [[1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [2.0, 2.0, 1.0]]
    t_rows = [[2.0, 1.0, 0.0], [1.0, 1.0, 1.5], [0.0, 3.0, 1.0]]
    temperature, beta, gamma = 2.0, 1.0, 0.5
    y_s = [softmax([x / temperature for x in row]) for row in s_rows]
    y_t = [softmax([x / temperature for x in row]) for row in t_rows]
    inter = 1 - sum(pearson(a, b) for a, b in zip(y_s, y_t, strict=True)) / 3
    columns = range(3)
    intra = 1 - sum(pearson([r[c] for r in y_s], [r[c] for r in y_t]) for c in columns) / 3
    expected = temperature**2 * (beta * inter + gamma * intra)
    got = L.dist(t64(s_rows), t64(t_rows), temperature, beta=beta, gamma=gamma)
    assert float(got) == pytest.approx(expected, rel=1e-10)


def test_hint_mse_by_hand():
    s, t = t64([[[[1.0, 2.0], [3.0, 4.0]]]]), t64([[[[1.0, 0.0], [0.0, 4.0]]]])
    assert float(L.hint_mse(s, t)) == pytest.approx((0 + 4 + 9 + 0) / 4)


def avg_pool_2x2(channel: list[list[float]]) -> list[list[float]]:
    def block_mean(i: int, j: int) -> float:
        return sum(channel[2 * i + di][2 * j + dj] for di in (0, 1) for dj in (0, 1)) / 4

    return [[block_mean(i, j) for j in range(len(channel[0]) // 2)] for i in range(len(channel) // 2)]


def attention_by_hand(sample: list[list[list[float]]], p: float) -> list[float]:
    h, w = len(sample[0]), len(sample[0][0])
    a = [sum(ch[i][j] ** p for ch in sample) / len(sample) for i in range(h) for j in range(w)]
    norm = math.sqrt(sum(x * x for x in a))
    return [x / norm for x in a]


def test_attention_transfer_by_hand():
    # Student (2 samples, 2 channels, 4×4) is pooled to the teacher's 2×2 before the attention maps.
    student = (torch.arange(64, dtype=torch.float64).reshape(2, 2, 4, 4) % 7) - 3
    teacher = (torch.arange(24, dtype=torch.float64).reshape(2, 3, 2, 2) % 5) - 2
    squares = []
    for s, t in zip(student.tolist(), teacher.tolist(), strict=True):
        a_s = attention_by_hand([avg_pool_2x2(ch) for ch in s], 2)
        a_t = attention_by_hand(t, 2)
        squares += [(x - y) ** 2 for x, y in zip(a_s, a_t, strict=True)]
    expected = sum(squares) / len(squares)
    assert float(L.attention_transfer(student, teacher)) == pytest.approx(expected, rel=1e-12)


def unit_vector(xs: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in xs))
    return [x / norm for x in xs]


@pytest.mark.parametrize(
    ("student_channels", "teacher_channels"),
    [(2, 3), (6, 5)],  # fewer channels than positions² (C×C Gram), more (the HW×HW Gram route)
)
def test_nst_by_hand(student_channels: int, teacher_channels: int):
    student = (torch.arange(8 * student_channels, dtype=torch.float64).reshape(2, student_channels, 2, 2) % 5) - 1
    teacher = (torch.arange(8 * teacher_channels, dtype=torch.float64).reshape(2, teacher_channels, 2, 2) % 7) - 2
    total = 0.0
    for s, t in zip(student.tolist(), teacher.tolist(), strict=True):
        s_vecs = [unit_vector([x for row in ch for x in row]) for ch in s]
        t_vecs = [unit_vector([x for row in ch for x in row]) for ch in t]

        def k_mean(xs, ys):
            return sum(sum(a * b for a, b in zip(x, y, strict=True)) ** 2 for x in xs for y in ys) / (len(xs) * len(ys))

        total += k_mean(t_vecs, t_vecs) + k_mean(s_vecs, s_vecs) - 2 * k_mean(s_vecs, t_vecs)
    assert float(L.nst(student, teacher)) == pytest.approx(total / 2, rel=1e-12)


def test_patient_loss_by_hand():
    # Stage 1: (0.6, 0.8) vs (0.8, 0.6) → mse 0.04; stage 2: (1, 0, 0) vs (0, 1, 0) → mse 2/3; mean of the two.
    student = [t64([[3.0, 4.0]]), t64([[1.0, 0.0, 0.0]])]
    teacher = [t64([[4.0, 3.0]]), t64([[0.0, 2.0, 0.0]])]
    assert float(L.patient_loss(student, teacher)) == pytest.approx((0.04 + 2 / 3) / 2, rel=1e-12)


POINTS_S = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
POINTS_T = [[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]


def test_rkd_distance_by_hand():
    def normalised_distances(points):
        d = [[math.dist(a, b) for b in points] for a in points]
        mean = sum(x for row in d for x in row if x > 0) / sum(1 for row in d for x in row if x > 0)
        return [x / mean for row in d for x in row]

    expected = huber_mean(normalised_distances(POINTS_S), normalised_distances(POINTS_T))
    assert float(L.rkd_distance(t64(POINTS_S), t64(POINTS_T))) == pytest.approx(expected, rel=1e-6)


def test_rkd_angle_by_hand():
    def cosines(points):
        out = []
        for j in points:  # the anchor: the angle is taken at e_j
            for i in points:
                for k in points:
                    u = [a - b for a, b in zip(i, j, strict=True)]
                    v = [a - b for a, b in zip(k, j, strict=True)]
                    nu, nv = math.hypot(*u), math.hypot(*v)
                    out.append(0.0 if nu == 0 or nv == 0 else (u[0] * v[0] + u[1] * v[1]) / (nu * nv))
        return out

    expected = huber_mean(cosines(POINTS_S), cosines(POINTS_T))
    assert float(L.rkd_angle(t64(POINTS_S), t64(POINTS_T))) == pytest.approx(expected, rel=1e-12)


def test_similarity_preserving_by_hand():
    # G_s = [[1, 1], [1, 2]] → rows (1, 1)/√2, (1, 2)/√5; G_t = I; ‖G̃_t − G̃_s‖² / B² with B = 2.
    expected = ((1 - 1 / math.sqrt(2)) ** 2 + 1 / 2 + 1 / 5 + (1 - 2 / math.sqrt(5)) ** 2) / 4
    got = L.similarity_preserving(t64([[1.0, 0.0], [1.0, 1.0]]), t64([[1.0, 0.0], [0.0, 1.0]]))
    assert float(got) == pytest.approx(expected, rel=1e-12)


def test_pkt_by_hand():
    s_emb = [[1.0, 0.0], [1.0, 1.0], [0.0, -2.0]]
    t_emb = [[2.0, 1.0], [0.0, 1.0], [-1.0, -1.0]]
    eps = 1e-7

    def conditional(points):
        units = [[x / (math.hypot(*p) + eps) for x in p] for p in points]
        k = [[(sum(a * b for a, b in zip(u, v, strict=True)) + 1) / 2 for v in units] for u in units]
        return [[x / sum(row) for x in row] for row in k]

    p_s, p_t = conditional(s_emb), conditional(t_emb)
    terms = [
        pt * math.log((pt + eps) / (ps + eps))
        for rs, rt in zip(p_s, p_t, strict=True)
        for ps, pt in zip(rs, rt, strict=True)
    ]
    assert float(L.pkt(t64(s_emb), t64(t_emb))) == pytest.approx(sum(terms) / 9, rel=1e-12)


def test_cc_by_hand():
    # Δ = |s − t| = [[1, 2], [1, 1], [2, 0]]: consecutive products 1·1 + 2·1 = 3 and 1·2 + 1·0 = 2, mean 2.5.
    s, t = t64([[1.0, 2.0], [0.0, 0.0], [3.0, 1.0]]), t64([[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    assert float(L.cc(s, t)) == pytest.approx(2.5)


def test_crd_nce_by_hand():
    # One anchor, K = 2 negatives, τ = 1, Z = 1, N = 4: h = (e, 1, 1/e) and the noise term K/N = 1/2.
    anchor = t64([[1.0, 0.0]])
    contrast = t64([[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]])
    h, noise = [math.e, 1.0, 1 / math.e], 0.5
    expected = -(math.log(h[0] / (h[0] + noise)) + sum(math.log(noise / (x + noise)) for x in h[1:]))
    got = L.crd_nce(anchor, contrast, temperature=1.0, normaliser=1.0, num_data=4)
    assert float(got) == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------------------------------------- round two, by hand


def test_kd_reverse_kl_by_hand():
    temperature = 2.0
    by_hand = sum(
        kl(softmax([x / temperature for x in s]), softmax([x / temperature for x in t]))
        for s, t in zip(S3, T3, strict=True)
    )
    expected = temperature**2 * by_hand / len(S3)
    assert float(L.kd_reverse_kl(t64(S3), t64(T3), temperature)) == pytest.approx(expected, rel=1e-12)


def test_kd_js_by_hand():
    temperature = 2.0
    total = 0.0
    for s, t in zip(S3, T3, strict=True):
        p, q = softmax([x / temperature for x in t]), softmax([x / temperature for x in s])
        m = [(a + b) / 2 for a, b in zip(p, q, strict=True)]
        total += 0.5 * kl(p, m) + 0.5 * kl(q, m)
    expected = temperature**2 * total / len(S3)
    assert float(L.kd_js(t64(S3), t64(T3), temperature)) == pytest.approx(expected, rel=1e-12)
    # bounded by T² ln 2, reached for disjoint supports
    far = L.kd_js(t64([[60.0, 0.0]]), t64([[0.0, 60.0]]), 1.0)
    assert float(far) == pytest.approx(math.log(2.0), rel=1e-9)


def zscore(row: list[float], eps: float = 1e-7) -> list[float]:
    """The LS code's normalisation: unbiased std (÷ K−1), ε added to it."""
    mean = sum(row) / len(row)
    std = math.sqrt(sum((x - mean) ** 2 for x in row) / (len(row) - 1))
    return [(x - mean) / (std + eps) for x in row]


def test_standardize_logits_by_hand():
    got = L.standardize_logits(t64(S3))
    for row_got, row in zip(got.tolist(), S3, strict=True):
        assert row_got == pytest.approx(zscore(row), rel=1e-12)
    # invariant to shifting and (positively) scaling a model's logits: what makes the temperature per-model
    assert torch.allclose(L.standardize_logits(3 * t64(S3) + 7), got, rtol=1e-6)


def test_kd_kl_with_logit_standardization_by_hand():
    # LS, Alg. 2: τ² · KL(softmax(Z(t)/τ) ‖ softmax(Z(s)/τ)), batchmean.
    temperature = 2.0
    by_hand = sum(
        kl(softmax([x / temperature for x in zscore(t)]), softmax([x / temperature for x in zscore(s)]))
        for s, t in zip(S3, T3, strict=True)
    )
    expected = temperature**2 * by_hand / len(S3)
    got = L.kd_kl(L.standardize_logits(t64(S3)), L.standardize_logits(t64(T3)), temperature)
    assert float(got) == pytest.approx(expected, rel=1e-12)


def test_dkd_with_logit_standardization_by_hand():
    targets = [0, 2]
    tckd, nckd = dkd_by_hand([zscore(r) for r in S3], [zscore(r) for r in T3], targets, 2.0)
    z_s, z_t = L.standardize_logits(t64(S3)), L.standardize_logits(t64(T3))
    got = L.dkd(z_s, z_t, torch.tensor(targets), alpha=9.0, beta=72.0, temperature=2.0)
    assert float(got) == pytest.approx(9 * tckd + 72 * nckd, rel=1e-12)


def test_tf_kd_virtual_teacher_by_hand():
    # K = 3, a = 0.9: p^d = (0.9, 0.05, 0.05) for class 0; teacher softmax(p^d / T), student softmax(z) at T = 1.
    temperature, a = 2.0, 0.9
    total = 0.0
    for s, gt in zip(S3, [0, 2], strict=True):
        virtual = [a if c == gt else (1 - a) / 2 for c in range(3)]
        total += kl(softmax([v / temperature for v in virtual]), softmax(s))
    got = L.tf_kd_virtual_teacher(t64(S3), torch.tensor([0, 2]), temperature, correct_prob=a)
    assert float(got) == pytest.approx(total / 2, rel=1e-12)


def cs_kd_by_hand(rows: list[list[float]], partner_rows: list[list[float]], temperature: float) -> float:
    """Yun et al. 2020: T² · mean_i KL(softmax(z(x'_i)/T) ‖ softmax(z(x_i)/T)), in plain float64 Python."""
    kls = [
        kl(softmax([v / temperature for v in p]), softmax([v / temperature for v in s]))
        for s, p in zip(rows, partner_rows, strict=True)
    ]
    return temperature**2 * sum(kls) / len(kls)


def test_cs_kd_by_hand():
    assert float(L.cs_kd(t64(S3), t64(T3), 4.0)) == pytest.approx(cs_kd_by_hand(S3, T3, 4.0), rel=1e-12)
    # The golden case's inputs, by hand: the stored golden value is this number.
    kwargs = CASES["cs_kd"].make()
    expected = cs_kd_by_hand(kwargs["logits"].tolist(), kwargs["partner_logits"].tolist(), 4.0)
    assert read_golden()["cs_kd"] == pytest.approx(expected, rel=1e-12)


def block_pool(channel: list[list[float]], size: int) -> list[list[float]]:
    """Adaptive average pooling of an h×h map to size×size when size divides h: the mean of each block."""
    k = len(channel) // size
    return [
        [sum(channel[i * k + a][j * k + b] for a in range(k) for b in range(k)) / (k * k) for j in range(size)]
        for i in range(size)
    ]


def mse_by_hand(a: list, b: list) -> float:
    flat_a = [x for sample in a for ch in sample for row in ch for x in row]
    flat_b = [x for sample in b for ch in sample for row in ch for x in row]
    return sum((x - y) ** 2 for x, y in zip(flat_a, flat_b, strict=True)) / len(flat_a)


def hcl_level_by_hand(fs: list, ft: list) -> float:
    """Chen et al. 2021's HCL for one level: full-size MSE (weight 1), then pooled sizes 4, 2, 1 below the map's
    height with weights ½, ¼, ⅛, divided by the weights' sum: 8×8 → {1, ½, ¼, ⅛}, 4×4 → {1, ½, ¼}, 1×1 → {1}."""
    h = len(fs[0][0])
    weights = {4: 0.5, 2: 0.25, 1: 0.125} if h == 8 else {2: 0.5, 1: 0.25} if h == 4 else {}
    loss = mse_by_hand(fs, ft)
    for size, w in weights.items():
        pooled_s = [[block_pool(ch, size) for ch in sample] for sample in fs]
        pooled_t = [[block_pool(ch, size) for ch in sample] for sample in ft]
        loss += w * mse_by_hand(pooled_s, pooled_t)
    return loss / (1 + sum(weights.values()))


def test_review_hcl_by_hand():
    kwargs = CASES["review_hcl"].make()
    student = [f.tolist() for f in kwargs["student_feats"]]
    teacher = [f.tolist() for f in kwargs["teacher_feats"]]
    expected = sum(hcl_level_by_hand(s, t) for s, t in zip(student, teacher, strict=True))
    assert float(L.review_hcl(**kwargs)) == pytest.approx(expected, rel=1e-12)
    assert read_golden()["review_hcl"] == pytest.approx(expected, rel=1e-12)  # the stored golden value, by hand


def test_deit_hard_distillation_by_hand():
    """Touvron et al. 2021: mean_i −log softmax(z_dist,i)[argmax z_t,i], in plain float64 Python."""
    kwargs = CASES["deit_hard_distillation"].make()
    rows, teacher = kwargs["dist_logits"].tolist(), kwargs["teacher_logits"].tolist()
    labels = [max(range(len(t)), key=t.__getitem__) for t in teacher]
    expected = -sum(math.log(softmax(r)[k]) for r, k in zip(rows, labels, strict=True)) / len(rows)
    assert float(L.deit_hard_distillation(**kwargs)) == pytest.approx(expected, rel=1e-12)
    assert read_golden()["deit_hard_distillation"] == pytest.approx(expected, rel=1e-12)


def test_deit_soft_distillation_by_hand():
    """DeiT's DistillationLoss (soft): T²·Σ_i KL(softmax(t_i/T) ‖ softmax(z_i/T)) / (B·C), an element-wise mean."""
    kwargs = CASES["deit_soft_distillation"].make()
    rows, teacher = kwargs["dist_logits"].tolist(), kwargs["teacher_logits"].tolist()
    temperature = kwargs["temperature"]
    total = sum(
        kl(softmax([v / temperature for v in t]), softmax([v / temperature for v in r]))
        for r, t in zip(rows, teacher, strict=True)
    )
    expected = temperature**2 * total / (len(rows) * len(rows[0]))
    assert float(L.deit_soft_distillation(**kwargs)) == pytest.approx(expected, rel=1e-12)
    assert read_golden()["deit_soft_distillation"] == pytest.approx(expected, rel=1e-12)


def test_dml_kl_by_hand():
    """(1/(K−1)) Σ_l KL(p_l ‖ p_k) at T = 1, batchmean: peers [ln 3, 0] (p = ¾, ¼) and [0, 0] (p = ½, ½) of a member
    at [0, 0]; a second row where the member equals both peers adds nothing to the sum (the batch mean halves it)."""
    own = t64([[0.0, 0.0], [1.0, 2.0]])
    peers = [t64([[math.log(3.0), 0.0], [1.0, 2.0]]), t64([[0.0, 0.0], [1.0, 2.0]])]
    first_row = (kl([0.75, 0.25], [0.5, 0.5]) + 0.0) / 2
    assert first_row == pytest.approx((0.75 * math.log(1.5) + 0.25 * math.log(0.5)) / 2)
    assert float(L.dml_kl(own, peers)) == pytest.approx(first_row / 2, rel=1e-12)
    assert float(L.dml_kl(own, [own, own])) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="at least one peer"):
        L.dml_kl(own, [])
