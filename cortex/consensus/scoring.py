"""The consensus formulas: pure functions over numbers, each stating its formula.

Symbols (defaults in `ConsensusPolicy`):

- `g`, `b`: an agent's good and bad outcomes (facts it wrote that were verified / refuted, votes
  that agreed / disagreed with a fact's settled outcome); `n = g + b`, its track record.
- `alpha`, `beta` (1, 1): the Beta prior of reputation; `k` (4): sets how fast experience
  `(g + 1) / (g + 1 + k)` grows (1/2 at g = k - 1); `n_est` (5): the good outcomes at which an
  agent is established; `cap` (1.0): the most that all fresh agents together weigh on one fact;
  `s0` (0.3): prior mass that keeps a few light votes from reading as certainty.

These functions hold no state and do no I/O; `cortex.consensus.settle` applies them to a
tenant's votes, and the property tests in tests/consensus/ check what docs/consensus.md claims.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from cortex.errors import ConfigError

__all__ = [
    "ConsensusPolicy",
    "ConsensusStatus",
    "ScoreParts",
    "WeightedVote",
    "consensus_score",
    "consensus_status",
    "is_established",
    "reputation",
    "score_parts",
    "vote_weight",
]

ConsensusStatus = Literal["verified", "disputed", "unverified"]


@dataclass(frozen=True, slots=True)
class ConsensusPolicy:
    """The constants of the formulas; the thresholds come from Settings.

    Requires `-1 < disputed_at < 0 < verified_at < 1`, positive priors, `k`, `cap` and `s0`.
    """

    verified_at: float = 0.5
    disputed_at: float = -0.5
    alpha: float = 1.0
    beta: float = 1.0
    k: float = 4.0
    n_est: int = 5
    cap: float = 1.0
    s0: float = 0.3
    rounds: int = 8

    def __post_init__(self) -> None:
        if not -1 < self.disputed_at < 0 < self.verified_at < 1:
            raise ConfigError("consensus thresholds need -1 < disputed < 0 < verified < 1")
        if min(self.alpha, self.beta, self.k, self.cap, self.s0) <= 0:
            raise ConfigError("consensus alpha, beta, k, cap and s0 must be > 0")
        if self.n_est < 1 or self.rounds < 1:
            raise ConfigError("consensus n_est and rounds must be >= 1")


@dataclass(frozen=True, slots=True)
class WeightedVote:
    """One standing vote as the score sees it: +1/-1, its weight in (0, 1], its pool."""

    value: int
    weight: float
    established: bool


@dataclass(frozen=True, slots=True)
class ScoreParts:
    """A consensus score and what it is made of.

    `support` and `opposition` are the weights counted for and against (fresh weights already
    scaled by `fresh_scale`, the factor that keeps the fresh pool within `cap`).
    """

    score: float
    support: float
    opposition: float
    fresh_scale: float


def reputation(good: float, bad: float, policy: ConsensusPolicy = ConsensusPolicy()) -> float:
    """Reputation in (0, 1): the mean of a Beta(alpha + g, beta + b) posterior.

    `r = (g + alpha) / (g + b + alpha + beta)`; an agent without a record has
    `alpha / (alpha + beta)` (0.5 by default). Requires g, b >= 0.
    """
    return (good + policy.alpha) / (good + bad + policy.alpha + policy.beta)


def vote_weight(good: float, bad: float, policy: ConsensusPolicy = ConsensusPolicy()) -> float:
    """Weight of an agent's vote in (0, 1): reputation times experience.

    `w = r * (g + 1) / (g + 1 + k)`: a new agent weighs `0.5 / (1 + k)` (0.1 by default), an
    agent with a clean record of 5 about 0.51, of 50 about 0.89; w < 1 always. Experience
    counts good outcomes only, so w rises with every good outcome and falls with every bad one.
    Requires g, b >= 0.
    """
    return reputation(good, bad, policy) * (good + 1) / (good + 1 + policy.k)


def is_established(good: float, bad: float, policy: ConsensusPolicy = ConsensusPolicy()) -> bool:
    """Whether an agent's vote counts on its own (`g >= n_est`) or in the capped fresh pool.

    Only good outcomes establish an agent: failures cannot buy a way out of the capped pool.
    """
    del bad  # part of the signature for symmetry with the other formulas
    return good >= policy.n_est


def consensus_score(
    votes: Iterable[WeightedVote], policy: ConsensusPolicy = ConsensusPolicy()
) -> ScoreParts:
    """The reputation-weighted vote of one fact, in (-1, 1).

    Established votes count with their weight. Fresh votes form one pool whose total weight
    `F = P + M` (for, against) is scaled by `f = min(1, cap / F)`, so that all fresh agents
    together never weigh more than `cap`, however many they are:

        score = (S_est + f * (P - M)) / (W_est + f * F + s0)

    with `S_est` the signed and `W_est` the total established weight. Properties (proved in
    docs/consensus.md, property-tested): |score| < 1; adding a +1 vote never lowers it and a
    -1 never raises it; it does not depend on the order of the votes (sums are exact, by
    `math.fsum`); and when the established votes are all +1 and weigh `W_est`, no set of
    fresh votes brings it below `(W_est - cap) / (W_est + cap + s0)`, which is > 0 when
    `W_est > cap` (symmetrically for -1).
    Requires every weight > 0 and every value in {+1, -1}.
    """
    est_for: list[float] = []
    est_against: list[float] = []
    fresh_for: list[float] = []
    fresh_against: list[float] = []
    for vote in votes:
        if vote.established:
            (est_for if vote.value > 0 else est_against).append(vote.weight)
        else:
            (fresh_for if vote.value > 0 else fresh_against).append(vote.weight)
    return score_parts(est_for, est_against, fresh_for, fresh_against, policy)


def score_parts(
    est_for: Sequence[float],
    est_against: Sequence[float],
    fresh_for: Sequence[float],
    fresh_against: Sequence[float],
    policy: ConsensusPolicy = ConsensusPolicy(),
) -> ScoreParts:
    """`consensus_score` over the weights of the votes, sorted into its four kinds.

    Established and fresh weights for (+1) and against (-1); the same formula, for callers
    that already hold the weights (settling a tenant scores every fact each round).
    """
    plus, minus = math.fsum(fresh_for), math.fsum(fresh_against)
    fresh = plus + minus
    scale = 1.0 if fresh <= policy.cap else policy.cap / fresh
    support = math.fsum(est_for) + scale * plus
    opposition = math.fsum(est_against) + scale * minus
    score = (support - opposition) / (support + opposition + policy.s0)
    return ScoreParts(score, support, opposition, scale)


def consensus_status(score: float, policy: ConsensusPolicy = ConsensusPolicy()) -> ConsensusStatus:
    """`verified` when score >= verified_at, `disputed` when score <= disputed_at, else
    `unverified`."""
    if score >= policy.verified_at:
        return "verified"
    if score <= policy.disputed_at:
        return "disputed"
    return "unverified"
