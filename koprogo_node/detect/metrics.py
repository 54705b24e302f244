"""Window-based detection metrics: precision/recall/F1 and the NAB score.

Windows are inclusive index pairs ``(start, end)`` into the flag array, sorted
and non-overlapping, as in NAB's label files.

Counting rules for precision/recall/F1:

- a window holding at least one flag is one true positive;
- a window without a flag is one false negative;
- flags outside every window are merged into runs of consecutive points and
  each run is one false positive event.

The NAB score follows Lavin & Ahmad (2015) and NAB's scorer: the first flag in
a window earns ``A_TP * sigma(y)`` where ``y`` runs from -1 at the window start
to 0 at its end; a flag outside windows costs ``|A_FP| * sigma(y)`` with ``y``
its distance past the previous window in window widths (the full ``A_FP`` when
no window precedes it); each missed window costs ``A_FN``. Flags inside the
probationary period are ignored. Normalisation maps the null detector (no
flags) to 0 and the ideal detector (``A_TP`` per window) to 100.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Window = tuple[int, int]


@dataclass(frozen=True, kw_only=True)
class NabProfile:
    """Weights of one NAB application profile."""

    a_tp: float
    a_fp: float
    a_fn: float


STANDARD_PROFILE = NabProfile(a_tp=1.0, a_fp=-0.11, a_fn=-1.0)


@dataclass(frozen=True)
class WindowCounts:
    """True-positive windows, false-positive events, missed windows."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __add__(self, other: "WindowCounts") -> "WindowCounts":
        return WindowCounts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    @property
    def precision(self) -> float:
        """Share of reported events that fall in a window (0 with no event)."""
        reported = self.tp + self.fp
        return self.tp / reported if reported else 0.0

    @property
    def recall(self) -> float:
        """Share of windows with at least one flag (0 with no window)."""
        windows = self.tp + self.fn
        return self.tp / windows if windows else 0.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall (0 when both are 0)."""
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


def count_windows(flags: np.ndarray, windows: Sequence[Window]) -> WindowCounts:
    """Count TP windows, FP events and FN windows for one series."""
    flags = np.asarray(flags, dtype=bool)
    inside = window_mask(flags.size, windows)
    tp = sum(bool(flags[start : end + 1].any()) for start, end in windows)
    return WindowCounts(tp=tp, fp=count_runs(flags & ~inside), fn=len(windows) - tp)


def precision_recall_f1(
    flags: np.ndarray, windows: Sequence[Window]
) -> dict[str, float]:
    """Return precision, recall and F1 of flags against windows."""
    counts = count_windows(flags, windows)
    return {"precision": counts.precision, "recall": counts.recall, "f1": counts.f1}


def window_mask(length: int, windows: Sequence[Window]) -> np.ndarray:
    """Return a boolean mask of the points inside any window."""
    mask = np.zeros(length, dtype=bool)
    for start, end in windows:
        mask[max(start, 0) : end + 1] = True
    return mask


def count_runs(flags: np.ndarray) -> int:
    """Count runs of consecutive True values."""
    flags = np.asarray(flags, dtype=bool)
    if flags.size == 0:
        return 0
    return int(flags[0]) + int(np.count_nonzero(flags[1:] & ~flags[:-1]))


def scaled_sigmoid(position: float) -> float:
    """NAB's scaled sigmoid: ~1 early in a window, 0 at its end, -1 far after."""
    if position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def probation_length(length: int, share: float = 0.15) -> int:
    """NAB's probationary period: 15 % of the series, at most 750 points."""
    return int(min(math.floor(share * length), share * 5000))


def nab_raw_score(
    flags: np.ndarray,
    windows: Sequence[Window],
    *,
    probation: int | None = None,
    profile: NabProfile = STANDARD_PROFILE,
) -> float:
    """Return the unnormalised NAB score of one series."""
    flags = np.asarray(flags, dtype=bool)
    skip = probation_length(flags.size) if probation is None else probation
    detected: set[int] = set()
    score = 0.0
    for index in np.flatnonzero(flags):
        if index < skip:
            continue
        window_id, position = _locate(int(index), windows)
        if window_id is None:
            score += abs(profile.a_fp) * _after_window_sigmoid(position)
        elif window_id not in detected:
            detected.add(window_id)
            score += profile.a_tp * scaled_sigmoid(position)
    return score + profile.a_fn * (len(windows) - len(detected))


def nab_null_score(n_windows: int, profile: NabProfile = STANDARD_PROFILE) -> float:
    """Raw score of a detector that never flags."""
    return profile.a_fn * n_windows


def nab_perfect_score(n_windows: int, profile: NabProfile = STANDARD_PROFILE) -> float:
    """Raw score of NAB's ideal detector: A_TP for every window."""
    return profile.a_tp * n_windows


def nab_normalise(
    raw: float, n_windows: int, profile: NabProfile = STANDARD_PROFILE
) -> float:
    """Map a raw score summed over series to NAB's 0 (null) .. 100 (ideal) scale."""
    null = nab_null_score(n_windows, profile)
    perfect = nab_perfect_score(n_windows, profile)
    if perfect == null:
        raise ValueError("NAB normalisation needs at least one labelled window")
    return 100.0 * (raw - null) / (perfect - null)


def nab_score(
    flags: np.ndarray,
    windows: Sequence[Window],
    *,
    probation: int | None = None,
    profile: NabProfile = STANDARD_PROFILE,
) -> float:
    """Return the normalised NAB score of one series."""
    raw = nab_raw_score(flags, windows, probation=probation, profile=profile)
    return nab_normalise(raw, len(windows), profile)


def _locate(index: int, windows: Sequence[Window]) -> tuple[int | None, float | None]:
    """Return (window id, relative position) or (None, distance past last window)."""
    previous: Window | None = None
    for window_id, (start, end) in enumerate(windows):
        if start <= index <= end:
            width = end - start + 1
            return window_id, -(end - index + 1) / width
        if end < index:
            previous = (start, end)
    if previous is None:
        return None, None
    start, end = previous
    return None, (index - end) / max(end - start, 1)


def _after_window_sigmoid(position: float | None) -> float:
    """Sigmoid of a false positive; the full penalty when no window precedes it."""
    return -1.0 if position is None else scaled_sigmoid(position)
