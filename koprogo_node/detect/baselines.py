"""Baseline detectors over a regularly sampled series; NaN marks a gap.

Both return one boolean flag per point. A NaN point is never flagged, and a
point without enough valid history is never flagged either.
"""

import numpy as np

MAD_TO_SIGMA = 1.4826


def rolling_zscore(
    values: np.ndarray, window: int = 168, threshold: float = 3.0
) -> np.ndarray:
    """Flag points further than threshold rolling stds from the previous mean."""
    if window < 2:
        raise ValueError(f"window must be at least 2, got {window!r}")
    x = np.asarray(values, dtype=np.float64)
    mean, std, count = _trailing_moments(x, window)
    with np.errstate(invalid="ignore"):
        flags = np.abs(x - mean) > threshold * std
    # Half a window of history at least, so early points are not judged on noise.
    return flags & (count >= max(2, window // 2)) & np.isfinite(x)


def seasonal_naive(
    values: np.ndarray, season: int = 168, threshold: float = 3.0
) -> np.ndarray:
    """Flag points that differ from one season ago by threshold robust scales."""
    if season < 1:
        raise ValueError(f"season must be at least 1, got {season!r}")
    x = np.asarray(values, dtype=np.float64)
    residual = np.full_like(x, np.nan)
    residual[season:] = x[season:] - x[:-season]
    finite = residual[np.isfinite(residual)]
    if finite.size == 0:
        return np.zeros(x.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        return np.abs(residual) > threshold * robust_scale(finite)


def robust_scale(values: np.ndarray) -> float:
    """Return the MAD-based sigma of finite values, or their mean deviation if 0."""
    centre = np.median(values)
    deviation = np.abs(values - centre)
    scale = MAD_TO_SIGMA * float(np.median(deviation))
    # A mostly constant series has MAD 0; fall back so rare changes still count.
    return scale if scale > 0 else float(np.mean(deviation))


def _trailing_moments(
    x: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return mean, std and count of the previous `window` finite points."""
    valid = np.isfinite(x)
    # Centre on the median before summing squares to keep cancellation small.
    centre = float(np.median(x[valid])) if valid.any() else 0.0
    shifted = np.where(valid, x - centre, 0.0)
    sum1 = _trailing_sum(shifted, window)
    sum2 = _trailing_sum(shifted**2, window)
    count = _trailing_sum(valid.astype(np.float64), window)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sum1 / count
        var = np.maximum(sum2 / count - mean**2, 0.0)
    return mean + centre, np.sqrt(var), count


def _trailing_sum(x: np.ndarray, window: int) -> np.ndarray:
    """Sum of x[t-window:t] for each t (excluding t itself)."""
    cumulative = np.concatenate(([0.0], np.cumsum(x)))
    ends = np.arange(x.size)
    starts = np.maximum(ends - window, 0)
    return cumulative[ends] - cumulative[starts]
