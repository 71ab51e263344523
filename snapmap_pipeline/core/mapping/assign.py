"""Combining signals into one calibrated score, and the one-to-one assignment over the whole file
(the Hungarian method, `best_assignment`, when columns compete for a field). List fields take up to
LIST_SLOTS columns; any column may map to nothing when no field beats the null threshold.
"""

from __future__ import annotations

import numpy as np

# Below this a column maps to nothing (distractors: "Shirt Size", "Tax Withholding"). Chosen on the
# labelled sets reweighted to ~15% distractors, the share in real exports (most columns are mappable).
NULL_THRESHOLD = 0.4
LIST_SLOTS = 3
AGREEMENT = 0.25  # lexical and semantic agreeing on a field adds this share of the weaker one
NON_EXACT_CAP = 0.97
# The embedding model is one signal, not a judge: with no lexical support at all (no shared or
# near-shared word) its score is damped, since cosine alone confuses siblings (middle → last name,
# nationality → race, user id → candidate id).
SEM_SUPPORT = 0.25
SEM_ALONE = 0.8


def combine(lexical: np.ndarray, semantic: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(score, semantic_won): max of the two signals plus a share of the weaker when both agree."""
    if semantic is None:
        return lexical.copy(), np.zeros_like(lexical, dtype=bool)
    semantic = np.where(lexical >= SEM_SUPPORT, semantic, semantic * SEM_ALONE)
    hi = np.maximum(lexical, semantic)
    lo = np.minimum(lexical, semantic)
    score = np.where(lexical >= 0.9, lexical, np.minimum(hi + AGREEMENT * lo, NON_EXACT_CAP))
    return score.astype(np.float32), (semantic > lexical) & (lexical < 0.9)


def assign(
    scores: np.ndarray,
    is_list: list[bool],
    blocked: set[int] | None = None,
    null_threshold: float = NULL_THRESHOLD,
) -> list[int | None]:
    """Best one-to-one choice of field per column (None = nothing), maximising the total score.

    `blocked` fields are already taken (by overrides or memory) and cannot be chosen."""
    n_cols, n_fields = scores.shape
    if n_cols == 0:
        return []
    slots: list[int] = []
    for f in range(n_fields):
        if blocked and f in blocked and not is_list[f]:
            continue
        slots.extend([f] * (LIST_SLOTS if is_list[f] else 1))
    value = np.zeros((n_cols, len(slots) + n_cols), dtype=np.float64)
    if slots:
        sub = scores[:, slots].astype(np.float64)
        value[:, : len(slots)] = np.where(sub >= null_threshold, sub, 0.0)
    value[:, len(slots) :] = null_threshold  # one "nothing" slot per column
    best = _uncontested(value[:, : len(slots)], slots, is_list, null_threshold)
    if best is not None:
        return best
    out: list[int | None] = [None] * n_cols
    for r, c in enumerate(best_assignment(value)):
        if c < len(slots) and value[r, c] >= null_threshold and value[r, c] > 0:
            out[r] = slots[c]
    return out


def best_assignment(value: np.ndarray) -> list[int]:
    """The column chosen for each row that maximises the total value, each column used at most once
    (rows <= columns): the Hungarian method with potentials, O(rows² · columns).

    Our own, not scipy's `linear_sum_assignment`: importing scipy.optimize took 0.6 s of every cold CLI
    run and Dagster step, for matrices of a file's columns by a schema's fields (tens by hundreds),
    where the loop below takes milliseconds. Its inner step is vectorised over the columns.
    """
    n, m = value.shape
    if n > m:
        raise ValueError("best_assignment needs at least as many columns as rows")
    cost = -np.asarray(value, dtype=np.float64)
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    owner = np.zeros(m + 1, dtype=np.int64)  # owner[j]: the row (1-based) holding column j, 0 = free
    way = np.zeros(m + 1, dtype=np.int64)
    for i in range(1, n + 1):  # a loop over the file's columns, one augmenting path each
        owner[0], j0 = i, 0
        slack = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:  # shortest augmenting path (Dijkstra on reduced costs), at most n steps
            used[j0] = True
            reduced = cost[owner[j0] - 1] - u[owner[j0]] - v[1:]
            free = ~used[1:]
            better = free & (reduced < slack[1:])
            slack[1:][better] = reduced[better]
            way[1:][better] = j0
            candidates = np.where(free, slack[1:], np.inf)
            j1 = int(np.argmin(candidates)) + 1
            delta = candidates[j1 - 1]
            held = np.flatnonzero(used)
            u[owner[held]] += delta
            v[held] -= delta
            slack[1:][free] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:  # flip the path
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    chosen = [0] * n
    for j in range(1, m + 1):
        if owner[j]:
            chosen[owner[j] - 1] = j - 1
    return chosen


def _uncontested(
    value: np.ndarray, slots: list[int], is_list: list[bool], null_threshold: float
) -> list[int | None] | None:
    """Each column's own best field when no field is wanted by more columns than it takes, else None.

    Then every column has its row maximum, which bounds any assignment's total from above, so this is
    the optimum the Hungarian method would find (up to exact ties).
    """
    if not slots:
        return [None] * value.shape[0]
    top = value.argmax(axis=1)
    picks = [
        slots[c] if value[r, c] >= null_threshold and value[r, c] > 0 else None for r, c in enumerate(top)
    ]
    taken: dict[int, int] = {}
    for f in picks:  # a loop over the file's columns, not rows
        if f is not None:
            taken[f] = taken.get(f, 0) + 1
            if taken[f] > (LIST_SLOTS if is_list[f] else 1):
                return None
    return picks
