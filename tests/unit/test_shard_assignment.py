"""Namespace shards: a stable, total, disjoint split of namespaces."""

from __future__ import annotations

import pytest

from imagestream_trigger import shards
from imagestream_trigger.errors import ConfigurationError
from imagestream_trigger.settings import from_sources


def test_every_namespace_has_exactly_one_shard() -> None:
    names = [f"team-{i}" for i in range(300)]
    for count in (1, 2, 3, 7):
        split = [shards.Shard(i, count) for i in range(count)]
        for name in names:
            assert sum(s.serves(name) for s in split) == 1
        # Roughly even: no shard gets less than half its share of 300 names.
        sizes = [sum(s.serves(n) for n in names) for s in split]
        assert min(sizes) > 300 / count / 2, sizes


def test_the_hash_is_stable_across_processes_and_versions() -> None:
    # FNV-1a 32 of known inputs: a change here would move every namespace.
    assert shards.fnv1a32(b"") == 0x811C9DC5
    assert shards.fnv1a32(b"a") == 0xE40C292C
    assert shards.fnv1a32(b"foobar") == 0xBF9CF968
    assert shards.shard_of("team-a", 1) == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", None), ("0/1", shards.Shard(0, 1)), (" 2 / 3 ", shards.Shard(2, 3))],
)
def test_parse(text: str, expected: shards.Shard | None) -> None:
    assert shards.parse(text) == expected


@pytest.mark.parametrize("text", ["3/3", "1/0", "a/b", "1", "-1/2"])
def test_a_bad_shard_is_a_clear_setting_error(text: str) -> None:
    with pytest.raises(ConfigurationError, match="IMAGESTREAM_TRIGGER_SHARD / --shard"):
        from_sources({"shard": text}, {})


def test_each_shard_gets_its_own_lease_unless_named() -> None:
    assert from_sources({"shard": "1/3"}, {}).lease == "imagestream-trigger-shard-1-of-3"
    assert from_sources({}, {}).lease == "imagestream-trigger"
    assert from_sources({"shard": "1/3", "lease_name": "mine"}, {}).lease == "mine"
