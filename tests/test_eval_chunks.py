"""Chunked whole-corpus ranking: bounded chunks, same lists as one big call."""

from __future__ import annotations

import numpy as np
import torch

from clusterneg.data.user_items import UserItems
from clusterneg.eval.evaluate import rank_all_items


def test_chunks_respect_the_score_budget_and_give_the_same_top_k() -> None:
    g = torch.Generator().manual_seed(0)
    ue, ie = torch.randn(20, 4, generator=g), torch.randn(50, 4, generator=g)
    exclude = UserItems.from_pairs(np.array([0, 0, 3, 19]), np.array([5, 7, 1, 49]), 20)
    seen: list[int] = []

    def score(u: torch.Tensor) -> torch.Tensor:
        seen.append(len(u))
        return ue[u] @ ie.T

    users = np.arange(20)
    small, small_v = rank_all_items(score, users, exclude, 50, 10, batch_size=8, max_scores=150)
    assert max(seen) == 3 and sum(seen) == 20  # 150 // 50 items = 3 users per call
    seen.clear()
    big, big_v = rank_all_items(score, users, exclude, 50, 10, batch_size=64)
    assert seen == [20]
    assert np.array_equal(small, big) and np.allclose(small_v, big_v)
    full = (ue @ ie.T)
    full[0, [5, 7]] = full[3, 1] = full[19, 49] = float("-inf")
    assert np.array_equal(big, full.topk(10, dim=1).indices.numpy())
    assert 5 not in big[0] and 7 not in big[0] and 49 not in big[19]


def test_validation_users_is_a_fixed_seeded_sorted_sample_of_users_with_targets() -> None:
    from clusterneg.experiment import ExperimentConfig, prepare, validation_users

    prep = prepare(ExperimentConfig("ml-100k", encoder="none", valid_users=100))
    users = validation_users(prep)
    assert users is not None and len(users) == 100 and len(set(users.tolist())) == 100
    assert bool((np.diff(users) > 0).all())
    assert bool((prep.valid_items.row_lengths()[users] > 0).all())
    assert np.array_equal(users, validation_users(prep))  # same seed, same sample
    prep.config.split_seed = 1
    assert not np.array_equal(users, validation_users(prep))
    prep.config.valid_users = 0
    assert validation_users(prep) is None  # all users
    prep.config.valid_users = 10**6
    assert validation_users(prep) is None  # more than there are: all users


def test_compare_refuses_a_negative_validation_sample(tmp_path) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "clusterneg.cli", "compare", "--valid-users", "-1",
         "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "valid-users" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_scores_are_copied_unless_the_score_function_gives_them_away() -> None:
    """Ranking masks excluded items with -inf: by default in a copy (the caller's tensor is
    untouched); with ``writable_scores`` in place (no copy per chunk), same top-k."""
    g = torch.Generator().manual_seed(0)
    held = torch.randn(6, 30, generator=g)
    before = held.clone()
    exclude = UserItems.from_pairs(np.array([0, 0, 3, 5]), np.array([1, 7, 2, 29]), 6, 30)
    users = np.arange(6)
    top, vals = rank_all_items(lambda u: held[u.numpy()], users, exclude, 30, 5)
    assert torch.equal(held, before)
    top_w, vals_w = rank_all_items(lambda u: held[u.numpy()].clone(), users, exclude, 30, 5,
                                   writable_scores=True)
    assert np.array_equal(top, top_w) and np.array_equal(vals, vals_w)
    assert 1 not in top[0] and 7 not in top[0] and 29 not in top[5]


def test_the_model_scores_refill_one_buffer_and_rank_as_fresh_tensors_do() -> None:
    """``experiment.score_fn`` writes every chunk into one reused buffer (issue 12: no
    page-faulted [b, N] allocation per chunk). Ranked with ``writable_scores``, chunk by
    chunk, the lists equal those of fresh matmul results; a shorter last chunk reuses the
    buffer's head; the scores equal ``user @ items.T``."""
    from clusterneg.experiment import score_fn
    from clusterneg.model import ModelConfig, TwoTower

    torch.manual_seed(0)
    model = TwoTower(ModelConfig(dim=8, user_id=True, history_len=0, content=False),
                     n_users=23, n_items=40)
    fn = score_fn(model)
    users = torch.arange(23)
    first = fn(users[:10])
    again = fn(users[10:13])
    assert again.data_ptr() == first.data_ptr()  # the same buffer, refilled
    items = model.all_item_vectors().detach()

    @torch.no_grad()
    def fresh(u: torch.Tensor) -> torch.Tensor:  # a new tensor per call, as before
        return model.user_vectors(u) @ items.T

    assert torch.equal(again, fresh(users[10:13]))
    exclude = UserItems.from_pairs(np.array([0, 4, 22]), np.array([3, 9, 39]), 23, 40)
    top, vals = rank_all_items(fn, users.numpy(), exclude, 40, 7, batch_size=5,
                               writable_scores=True)
    ref, ref_v = rank_all_items(fresh, users.numpy(), exclude, 40, 7, batch_size=5)
    assert np.array_equal(top, ref) and np.array_equal(vals, ref_v)
