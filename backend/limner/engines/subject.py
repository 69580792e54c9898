"""Whole subjects: the person and what they wear and hold, decided part by part.

A person-matting engine can leave part of the subject out (a name patch, a dark sleeve
beside a held helmet) or half in (a see-through ghost of a held object). Such parts are
found where the engine is unsure over an area too thick to be hair, or where two other
engines are sure of a subject the first one left out; each part is then decided as a
whole by the three engines' opinions (their mean alpha over it): kept, its inside made
sure subject, or dropped, its inside made sure background. The part's rim is left to the
matting solve, so its edge is the picture's. Parts the engine was sure of are never
dropped. Each decision is reported with its votes, so the choice can be measured.

Second opinions: mediapipe's selfie segmentation (people; fast), asked first, and U²-Net-p
(salient objects; slower), asked only when there is a part to decide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

#: the engine is unsure between these
UNSURE_LOW, UNSURE_HIGH = 0.1, 0.9
#: a part is at least this thick (a fraction of the working side: hair bands are thinner)
#: and this large (a fraction of the picture)
THICKNESS, SMALLEST_PART = 0.012, 0.002
#: a part the engine left out is kept when both other engines are at least this sure
BOTH_SURE = 0.75
#: a part the engine was half sure of is kept when, with the other two, the mean is above
KEEP_MEAN = 0.5


@dataclass(frozen=True)
class Part:
    """One decided part: where it is (x, y, w, h at the working size), its share of the
    picture, each engine's mean alpha over it, and whether it was kept."""

    box: tuple[int, int, int, int]
    area: float
    votes: dict[str, float]
    kept: bool

    def describe(self) -> str:
        votes = ", ".join(f"{name} {value:.2f}" for name, value in self.votes.items())
        return (f"{'kept' if self.kept else 'dropped'} a part at {self.box} "
                f"({self.area:.1%} of the picture; {votes})")


@dataclass
class Decisions:
    """Where the subject was decided: `keep` and `drop` (bool masks of the parts' insides,
    at the working size) and the parts, for the record."""

    keep: np.ndarray
    drop: np.ndarray
    parts: list[Part] = field(default_factory=list)


def disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)


def decide(base: np.ndarray, opinions: Callable[[str], np.ndarray],
           engine: str = "rvm") -> Decisions:
    """The parts of `base` (the engine's alpha at the working size) to keep or drop.
    `opinions(name)` is another engine's alpha for the same picture ("mediapipe",
    "u2netp"), asked for only when needed."""
    radius = max(2, round(THICKNESS * max(base.shape)))
    shape = disc(radius)
    out = Decisions(np.zeros(base.shape, bool), np.zeros(base.shape, bool))
    unsure = ((base > UNSURE_LOW) & (base < UNSURE_HIGH)).astype(np.uint8)
    ghosts = cv2.morphologyEx(unsure, cv2.MORPH_OPEN, shape)
    selfie = opinions("mediapipe")
    left_out = ((base < 0.5) & (selfie > 0.5)).astype(np.uint8)
    if not (_big_parts(ghosts, base.size) or _big_parts(
            cv2.morphologyEx(left_out, cv2.MORPH_OPEN, shape), base.size)):
        return out                             # nothing to decide: U²-Net-p is not asked
    salient = opinions("u2netp")
    # left out: where both other engines see subject, not just the fast one
    left_out = cv2.morphologyEx(left_out & (salient > 0.5).astype(np.uint8), cv2.MORPH_OPEN,
                                shape)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ghosts | left_out,
                                                                connectivity=8)
    big = _big_parts(labels, base.size, count, stats)
    near_subject = cv2.dilate((base > 0.95).astype(np.uint8), disc(2 * radius)) > 0
    inside = cv2.erode((labels > 0).astype(np.uint8), shape)    # the rim is the solve's
    for i in big:
        part = labels == i
        votes = {engine: float(base[part].mean()), "mediapipe": float(selfie[part].mean()),
                 "u2netp": float(salient[part].mean())}
        others = min(votes["mediapipe"], votes["u2netp"])
        held = (part & near_subject).any()       # worn or held things touch the person
        kept = held and (others >= BOTH_SURE or (votes[engine] >= 0.5 and
                                                  np.mean(list(votes.values())) > KEEP_MEAN))
        if not kept and votes[engine] < UNSURE_LOW:
            continue                             # left out, and staying out: no change
        where = part & (inside > 0)
        if kept:
            out.keep |= where
        else:
            out.drop |= where & (base < 0.95)    # what the engine was sure of stays
        x, y, w, h = (int(v) for v in stats[i, :4])
        out.parts.append(Part((x, y, w, h), float(part.mean()),
                              {k: round(v, 3) for k, v in votes.items()}, bool(kept)))
    return out


def _big_parts(mask: np.ndarray, size: int, count: int | None = None,
               stats: np.ndarray | None = None) -> list[int]:
    """The labels of `mask`'s parts (or of a labelling's) of at least SMALLEST_PART."""
    if count is None:
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    return [i for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] >= SMALLEST_PART * size]


def hint_strength(picture: np.ndarray) -> np.ndarray:
    """0..1 per pixel of a keep or remove hint (float RGB or RGBA): a layer with
    transparency hints where it is painted (its alpha); an opaque one (a channel, a mask
    file) where it is light (its grey)."""
    grey = picture[:, :, :3].mean(-1) if picture.ndim == 3 else picture
    if picture.ndim == 3 and picture.shape[2] == 4 and picture[:, :, 3].min() < 0.999:
        return np.clip(picture[:, :, 3], 0, 1).astype(np.float32)
    return np.clip(grey, 0, 1).astype(np.float32)
