"""Streaming estimate of item frequencies for the logQ correction (Yi et al. 2019).

When the catalog's interaction counts are not known up front (a stream), each item's
sampling probability is estimated online from the gaps between its appearances: hashed
arrays ``A`` (the step an item was last seen) and ``B`` (a moving average of the gap between
two sightings); on seeing item ``y`` at step ``t``, ``B[h(y)] <- (1 - a) B[h(y)] + a (t -
A[h(y)])`` and ``A[h(y)] <- t``. Here an item seen ``c`` times in one batch counts as ``c``
sightings (the later ones after a gap of 0), so ``B`` is the mean number of steps per
occurrence even for items that appear in every batch. An item seen every ``B`` steps on
average has a per-step rate ``1 / B``, hence a per-example probability
``p = 1 / (B x batch_size)``. With
several hash functions the largest gap wins (collisions only ever shorten gaps). Memory is
``2 x n_hashes x n_buckets``, fixed. An item's first sighting at step ``t`` starts its gap at
``(t + 1) / c`` (a first guess that the moving average then corrects); never-seen items keep the
uniform prior ``1 / n_items``.

References:
    Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
    Recommendations", RecSys 2019, section 4 ("Streaming frequency estimation", Algorithm 2).

Example:
    >>> est = StreamingFrequency(n_buckets=64, batch_size=2, alpha=0.5)
    >>> for step in range(100):
    ...     est.update(torch.tensor([7, step % 50 + 8]), step)
    >>> round(float(est.probability(torch.tensor([7]))), 3)  # item 7: in every batch of 2
    0.5
"""

from __future__ import annotations

import torch

from clusterneg.errors import ConfigError

_PRIME = 2_147_483_647  # 2^31 - 1


class StreamingFrequency:
    """Hashed last-seen steps and moving-average gaps (Yi et al. 2019, Algorithm 2).

    Args:
        n_buckets: H, slots per hash array (about the number of items keeps collisions low).
        batch_size: examples per step B (turns a per-step rate into a per-example one).
        alpha: moving-average rate a.
        n_hashes: independent hash arrays (the largest gap wins).
        n_items: catalog size for the prior of never-seen items (None: ``n_buckets``).
        seed: seeds the hash functions.
        device: torch device of the arrays.
    """

    def __init__(self, n_buckets: int, batch_size: int, alpha: float = 0.01, n_hashes: int = 2,
                 n_items: int | None = None, seed: int = 0, device: str = "cpu") -> None:
        if n_buckets < 1 or n_hashes < 1 or batch_size < 1 or not 0 < alpha <= 1:
            raise ConfigError("streaming frequency needs n_buckets, n_hashes, batch_size >= 1 "
                              f"and 0 < alpha <= 1, got {n_buckets}, {n_hashes}, {batch_size}, "
                              f"{alpha}")
        self.n_buckets, self.batch_size, self.alpha = int(n_buckets), int(batch_size), alpha
        self.prior = 1.0 / float(n_items or n_buckets)
        gen = torch.Generator().manual_seed(seed)
        self.a = (torch.randint(1, _PRIME, (n_hashes, 1), generator=gen) | 1).to(device)
        self.b = torch.randint(0, _PRIME, (n_hashes, 1), generator=gen).to(device)
        self.last = torch.full((n_hashes, n_buckets), -1.0, dtype=torch.float64, device=device)
        self.gap = torch.zeros((n_hashes, n_buckets), dtype=torch.float64, device=device)
        self._count = torch.zeros(n_buckets, dtype=torch.float64, device=device)  # scratch, 0

    def buckets(self, items: torch.Tensor) -> torch.Tensor:
        """int64 [n_hashes, n]: ``((a * item + b) mod p) mod H`` per hash function."""
        return ((self.a * items.reshape(1, -1).to(self.a.device) + self.b) % _PRIME) \
            % self.n_buckets

    def update(self, items: torch.Tensor, step: int) -> None:
        """Record that ``items`` (int64 [n], repeats allowed) appeared at step ``step``.

        An item seen ``c`` times in the batch contributes ``c`` sightings: one after a gap of
        ``step - last`` steps, then ``c - 1`` after a gap of 0, so the average gap stays the
        mean number of steps per occurrence even for items in every batch (the one-sighting-
        per-step rule of the paper saturates at ``p = 1 / B``).
        """
        keep = 1.0 - self.alpha
        for r, row in enumerate(self.buckets(items)):
            # per element, its bucket's count in the batch (a scratch array, zeroed again
            # after): no torch.unique, so no read back to the host on an accelerator.
            # Elements of one bucket compute identical values, so the duplicate writes
            # below agree whatever their order.
            self._count.index_add_(0, row, torch.ones_like(row, dtype=self._count.dtype))
            c = self._count[row]
            self._count.index_fill_(0, row, 0.0)
            last, gap = self.last[r, row], self.gap[r, row]
            first = self.alpha * (step - last)
            decayed = keep ** c * gap + keep ** (c - 1) * first
            self.gap[r, row] = torch.where(last >= 0, decayed, (step + 1.0) / c)
            self.last[r, row] = float(step)

    def probability(self, items: torch.Tensor) -> torch.Tensor:
        """float32 [n]: estimated per-example probability of each item (prior if unseen)."""
        h = self.buckets(items)
        gap = self.gap.gather(1, h).amax(dim=0)
        seen = (self.last.gather(1, h) >= 0).all(dim=0)
        p = 1.0 / (gap.clamp(min=1.0 / self.batch_size) * self.batch_size)  # p <= 1
        return torch.where(seen, p, torch.full_like(p, self.prior)).float()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"a": self.a, "b": self.b, "last": self.last, "gap": self.gap}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for k, v in state.items():
            getattr(self, k).copy_(v)
