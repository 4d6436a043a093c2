"""Cluster naming: central titles, characteristic tags, reply cleaning, the on-disk cache
(with a fake generator), and SmolLM2 for real on two clusters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clusterneg.cluster.naming import (
    SHOTS,
    SmolLM2Namer,
    build_messages,
    central_items,
    clean_name,
    cluster_tags,
    name_clusters,
)

# Two clusters in 2-d: cluster 0 around (1, 0), cluster 1 around (0, 1).
EMB = np.array([[1.0, 0.0], [1.0, 0.3], [1.0, -0.1], [0.0, 1.0], [0.2, 1.0]], np.float32)
CLUSTERS = np.array([0, 0, 0, 1, 1])
CENTROIDS = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
TITLES = ["Red pen", "Blue pen", "Black pen", "The Shining", "Halloween"]
CATS = [["Office", "Pens"], ["Office", "Pens"], ["Office", "Pens"], ["Horror"], ["Horror"]]


class FakeGenerator:
    """Replies with the first title of the group, counting the prompts it sees."""

    model_id = "fake-llm"
    batch_size = 1

    def __init__(self, reply: str | None = None) -> None:
        self.prompts: list[list[dict[str, str]]] = []
        self.reply = reply

    def __call__(self, prompts: list[list[dict[str, str]]]) -> list[str]:
        self.prompts += prompts
        if self.reply is not None:
            return [self.reply] * len(prompts)
        return [f'"{p[-1]["content"].splitlines()[0][2:]} group."\nmore text' for p in prompts]


def test_central_items_nearest_first() -> None:
    got = central_items(EMB, CLUSTERS, CENTROIDS, n=2)
    assert [g.tolist() for g in got] == [[0, 2], [3, 4]]


def test_cluster_tags_prefer_characteristic_labels() -> None:
    tags = cluster_tags(CLUSTERS, CATS, 2)
    assert tags[0][0] == "Pens" and "Office" in tags[0] and tags[1] == ["Horror"]
    assert cluster_tags(CLUSTERS, None, 2) == [[], []]


def test_clean_name() -> None:
    assert clean_name('"Action thrillers."\nThe end') == "Action thrillers"
    assert clean_name("Name: **Kitchen knives**") == "Kitchen knives"
    assert clean_name("one two three four five six seven") == "one two three four five"
    assert clean_name("  \n ") == ""


def test_prompt_has_examples_then_the_group() -> None:
    msgs = build_messages(["Red pen", "Blue pen"], ["Pens"])
    assert msgs[0]["role"] == "system" and len(msgs) == 2 + 2 * len(SHOTS)
    assert msgs[-1] == {"role": "user", "content": "- Red pen\n- Blue pen\nCommon tags: Pens"}


def test_names_are_cached_per_prompt(tmp_path: Path) -> None:
    gen = FakeGenerator()
    names = name_clusters(EMB, CLUSTERS, CENTROIDS, TITLES, CATS, generator=gen, cache=tmp_path)
    assert names == ["Red pen group", "The Shining group"]
    assert len(gen.prompts) == 2
    again = name_clusters(EMB, CLUSTERS, CENTROIDS, TITLES, CATS, generator=gen,
                          cache=tmp_path)
    assert again == names and len(gen.prompts) == 2  # nothing generated the second time
    renamed = list(TITLES)
    renamed[3] = "Scream"
    name_clusters(EMB, CLUSTERS, CENTROIDS, renamed, CATS, generator=gen, cache=tmp_path)
    assert len(gen.prompts) == 3  # only the cluster whose titles changed


def test_unusable_reply_falls_back_to_the_id(tmp_path: Path) -> None:
    names = name_clusters(EMB, CLUSTERS, CENTROIDS, TITLES, None,
                          generator=FakeGenerator(reply="  "), cache=False)
    assert names == ["cluster 0", "cluster 1"]


@pytest.mark.slow
def test_smollm2_names_two_clusters(tmp_path: Path) -> None:
    gen = SmolLM2Namer(max_new_tokens=8)
    names = name_clusters(EMB, CLUSTERS, CENTROIDS, TITLES, CATS, generator=gen, cache=False)
    assert len(names) == 2 and all(1 <= len(n.split()) <= 5 for n in names)
    assert not any(n.startswith("cluster ") for n in names)
    assert names[0] != names[1]
    assert name_clusters(EMB, CLUSTERS, CENTROIDS, TITLES, CATS, generator=gen,
                         cache=False) == names  # greedy decoding: the same names again
