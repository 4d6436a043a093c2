"""The retriever over a tiny trained run: recommendations, new items in real time, the
durable added-items log, and reading new-item files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from clusterneg.errors import ConfigError, DataError
from clusterneg.serve import (
    DuplicateItemError,
    ItemLog,
    NewItem,
    Retriever,
    UnknownIdError,
    read_new_items,
)
from clusterneg.serve.item_log import encode_batch
from serve_fixtures import TopicEncoder, favourite, topic_vector

SPACE = NewItem("new-space", fields={"title": "Space Opera number 99", "genre": "space opera"})


def _topic_users(retriever: Retriever, topic: int) -> list[str]:
    return [u for u in retriever.user_index if favourite(u) == topic]


def test_recommend_excludes_seen_and_scores_are_the_towers_cosines(trained_run: Path) -> None:
    r = Retriever.open(trained_run, kind="exact")
    recs = r.recommend(user="u3", k=10)
    u = r.user_index["u3"]
    seen = set(r.seen.row(u).tolist())
    got = [r.item_index[x.item_id] for x in recs]
    assert len(recs) == 10 and not seen & set(got)
    with torch.no_grad():
        cos = (r.model.user_vectors(torch.tensor([u])) @ r.model.all_item_vectors().T)[0]
    np.testing.assert_allclose([x.score for x in recs], cos[got].numpy(), atol=1e-5)
    unseen = [i for i in range(r.model.n_items) if i not in seen]
    best = sorted(unseen, key=lambda i: -float(cos[i]))[:10]
    assert got == best  # the exact index ranks every unseen item by the model's score


def test_nothing_is_unpickled_and_cluster_names_are_served(
        run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("unpickling while loading a run")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(torch, "load", refuse)
    config = json.loads((run_dir / "config.json").read_text())
    config["cluster_names"] = [f"topic group {c}" for c in range(5)]
    (run_dir / "config.json").write_text(json.dumps(config))
    recs = Retriever.open(run_dir).recommend(user="u2", k=3)
    assert all(x.cluster_name == f"topic group {x.cluster}" for x in recs)


def test_runs_keep_their_centroids_and_older_runs_rebuild_them(run_dir: Path) -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(str(run_dir / "model.safetensors"))
    n_clusters = len(np.unique(state["extra.item_cluster"].numpy()))
    assert state["extra.centroids"].shape == (n_clusters, 16) and n_clusters >= 3
    kept = Retriever.open(run_dir).state.clusters
    assert kept is not None
    np.testing.assert_array_equal(kept.item_cluster, state["extra.item_cluster"].numpy())
    assert (kept.clusterer.assign(kept.clusterer.centroids) == np.arange(n_clusters)).all()
    # an older run without them: the seeded preparation gives the same clusters back
    save_file({k: v for k, v in state.items() if not k.startswith("extra.")},
              str(run_dir / "model.safetensors"))
    import hashlib
    import json

    cfg = json.loads((run_dir / "config.json").read_text())  # keep the recorded checksum true
    cfg["weights_sha256"] = hashlib.sha256((run_dir / "model.safetensors").read_bytes()).hexdigest()
    (run_dir / "config.json").write_text(json.dumps(cfg))
    rebuilt = Retriever.open(run_dir).state.clusters
    assert rebuilt is not None
    np.testing.assert_array_equal(rebuilt.item_cluster, kept.item_cluster)


def test_exclusions_and_item_queries(trained_run: Path) -> None:
    r = Retriever.open(trained_run)
    first = r.recommend(user="u0", k=3)
    again = r.recommend(user="u0", k=3, exclude=[first[0].item_id])
    assert first[0].item_id not in {x.item_id for x in again}
    # "more like these": recent topic-0 items bring back topic-0 items, never themselves
    recent = ["i0", "i5", "i10"]
    recs = r.recommend(items=recent, k=5)
    assert not set(recent) & {x.item_id for x in recs}
    assert all(int(x.item_id[1:]) % 5 == 0 for x in recs)


def test_bad_queries(trained_run: Path) -> None:
    r = Retriever.open(trained_run)
    with pytest.raises(UnknownIdError, match="nobody"):
        r.recommend(user="nobody")
    with pytest.raises(UnknownIdError, match="i999"):
        r.recommend(items=["i999"])
    for k in (0, -1, 1001):
        with pytest.raises(ConfigError, match="k must be"):
            r.recommend(user="u0", k=k)
    with pytest.raises(ConfigError, match="exactly one"):
        r.recommend(user="u0", items=["i1"])


def test_new_item_is_retrievable_at_once(run_dir: Path) -> None:
    r = Retriever.open(run_dir, encoder=TopicEncoder())
    (added,) = r.add_items([SPACE])
    assert added.index == 50 and r.n_items == 51
    # its nearest centroid is the cluster of the catalog's space-opera items
    space_clusters = {int(r.item_cluster[r.item_index[f"i{j}"]]) for j in range(0, 50, 5)}
    assert space_clusters == {added.cluster}
    assert int(r.pool.item_ids[r.pool.slot_of(torch.tensor(50), torch.tensor(added.cluster))]
               ) == 50  # it entered the GOOBS pool segment of its cluster
    for u in _topic_users(r, 0):
        assert r.recommend(user=u, k=1)[0].item_id == "new-space", u
    others = [u for t in (1, 2, 3, 4) for u in _topic_users(r, t)]
    top3 = [{x.item_id for x in r.recommend(user=u, k=3)} for u in others]
    assert sum("new-space" in s for s in top3) < len(others) / 4
    # the item tower served it through the content path alone
    with torch.no_grad():
        content = torch.as_tensor(r._content_rows(np.array([50])))
        vec = r.model.item_vectors(torch.tensor([50]), content)
        by_hand = torch.nn.functional.normalize(r.model.content_proj(content), dim=-1)
    torch.testing.assert_close(vec, by_hand)


def test_added_items_survive_a_restart(run_dir: Path) -> None:
    r = Retriever.open(run_dir, encoder=TopicEncoder())
    r.add_items([SPACE])
    r.add_items([NewItem("new-jazz", text="late night jazz piano trio")])
    before = r.recommend(user="u4", k=5)
    again = Retriever.open(run_dir, encoder=TopicEncoder())
    assert again.n_added == 2 and again.item_ids[50:] == ["new-space", "new-jazz"]
    after = again.recommend(user="u4", k=5)
    assert [x.item_id for x in after] == [x.item_id for x in before]
    np.testing.assert_allclose([x.score for x in after], [x.score for x in before], atol=1e-6)
    assert again.health()["index_size"] == 52
    with pytest.raises(DuplicateItemError, match="new-jazz"):
        again.add_items([NewItem("new-jazz", text="jazz piano")])
    with pytest.raises(DuplicateItemError, match="i3"):
        again.add_items([NewItem("i3", text="jazz piano")])


def test_a_torn_last_append_is_dropped_and_truncated(run_dir: Path) -> None:
    r = Retriever.open(run_dir, encoder=TopicEncoder())
    r.add_items([SPACE])
    torn = encode_batch([{"item_id": "half", "index": 51, "title": "x", "cluster": 0,
                          "content": [0.0] * 16}])
    with open(r.log.path, "ab") as f:
        f.write(torn[: len(torn) // 2])  # killed in the middle of a write
    again = Retriever.open(run_dir, encoder=TopicEncoder())
    assert again.item_ids[50:] == ["new-space"]
    again.add_items([NewItem("next", text="cooking show")])
    third = Retriever.open(run_dir, encoder=TopicEncoder())
    assert third.item_ids[50:] == ["new-space", "next"]


def test_damage_before_the_end_is_reported(tmp_path: Path) -> None:
    log = ItemLog(tmp_path / "log.jsonl")
    with log.exclusive():
        log.append([{"item_id": "a"}])
        log.append([{"item_id": "b"}])
    lines = log.path.read_bytes().splitlines(keepends=True)
    log.path.write_bytes(lines[0].replace(b'"a"', b'"z"') + lines[1])
    with pytest.raises(DataError, match=":1:.*damaged"):
        log.read()


def test_two_writers_on_one_run_never_clash(run_dir: Path) -> None:
    """A service and ``clusterneg items add`` adding to the same run at the same time."""
    service = Retriever.open(run_dir, encoder=TopicEncoder())
    cli = Retriever.open(run_dir, encoder=TopicEncoder())
    service.add_items([SPACE])
    (b,) = cli.add_items([NewItem("from-cli", text="cooking show")])
    assert b.index == 51  # the CLI saw the service's add first
    (c,) = service.add_items([NewItem("later", text="jazz piano")])
    assert c.index == 52 and service.item_ids[50:] == ["new-space", "from-cli", "later"]
    with pytest.raises(DuplicateItemError):
        cli.add_items([NewItem("later", text="jazz piano")])
    assert Retriever.open(run_dir, encoder=TopicEncoder()).item_ids[50:] == service.item_ids[50:]


KILL_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from serve_fixtures import TopicEncoder
from clusterneg.serve import NewItem, Retriever
r = Retriever.open({run!r}, encoder=TopicEncoder())
for n in range(10_000):
    r.add_items([NewItem(f"k{{n}}", text="cooking show " + str(n))])
    print(f"k{{n}}", flush=True)   # acknowledged
"""


def test_kill_during_adds_loses_nothing_acknowledged(run_dir: Path) -> None:
    tests = str(Path(__file__).parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(tests).parent / "src"),
                                                        os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c",
                             KILL_SCRIPT.format(tests=tests, run=str(run_dir))],
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    acked = []
    try:
        for line in proc.stdout:
            acked.append(line.strip())
            if len(acked) == 25:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert len(acked) == 25
    after = Retriever.open(run_dir, encoder=TopicEncoder())
    kept = after.item_ids[50:]
    assert kept[: len(acked)] == acked  # every acknowledged add, in order
    assert all(k.startswith("k") for k in kept)
    assert after.recommend(items=[acked[0]], k=1)  # and they are searchable


def test_new_item_files(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(
        json.dumps({"item_id": "n1", "title": "Jazz Piano 2", "genre": "jazz piano"}) + "\n\n"
        + json.dumps({"item_id": "n2", "text": "a cooking show", "vector": [1, 2]}) + "\n")
    a = read_new_items(tmp_path / "a.jsonl")
    assert [(i.item_id, i.title, i.vector) for i in a] == [("n1", "Jazz Piano 2", None),
                                                           ("n2", "a cooking show", [1.0, 2.0])]
    (tmp_path / "b.csv").write_text("item_id,title\nn1,Space Opera 7\n")
    assert read_new_items(tmp_path / "b.csv")[0].fields == {"title": "Space Opera 7"}
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"item_id": ["p1"], "vector": [[0.5, 0.5]]}), tmp_path / "c.parquet")
    assert read_new_items(tmp_path / "c.parquet")[0].vector == [0.5, 0.5]


@pytest.mark.parametrize("content,match", [
    ('{"item_id": "n1", "title": "x"}\n{"title": "y"}\n', r"a.jsonl:2: field 'item_id'"),
    ('{"item_id": "n1", "title": "x"}\n{oops\n', r"a.jsonl:2: invalid JSON"),
    ('{"item_id": "n1"}\n', r"a.jsonl:1: field 'text'"),
    ('{"item_id": "n1", "vector": [1, "x"]}\n', r"a.jsonl:1: field 'vector'"),
    ('{"item_id": "n1", "title": "a"}\n{"item_id": "n1", "title": "b"}\n', r":2: .*repeats"),
])
def test_bad_item_files_name_line_and_field(tmp_path: Path, content: str, match: str) -> None:
    (tmp_path / "a.jsonl").write_text(content)
    with pytest.raises(DataError, match=match):
        read_new_items(tmp_path / "a.jsonl")


def test_precomputed_runs_need_vectors_and_check_their_width(run_dir: Path) -> None:
    r = Retriever.open(run_dir)  # the run's own encoder: precomputed vectors
    with pytest.raises(ConfigError, match="precomputed vectors"):
        r.add_items([NewItem("t", text="cooking show")])
    with pytest.raises(DataError, match="16-d"):
        r.add_items([NewItem("v", vector=[1.0, 2.0])])
    (added,) = r.add_items([NewItem("v", vector=topic_vector("mountain hiking").tolist())])
    assert added.cluster == int(r.item_cluster[r.item_index["i3"]])  # i3: mountain hiking
