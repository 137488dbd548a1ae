"""Tag policies (policy.py): which tag of a stream a trigger follows, with Flux's semantics.

Table-driven on the policy's answer; invalid input, however odd, only ever gives a
``PolicyError`` with one readable sentence.
"""

from __future__ import annotations

import random
import string

import pytest

from imagestream_trigger.policy import (
    Picked,
    PolicyError,
    Unmatched,
    compile_policy,
    parse_version,
)

# 20 tags as a real stream holds them: releases with and without "v", pre-releases,
# a 2.x line, and tags that are no semantic version at all.
TWENTY = [
    "latest",
    "stable",
    "main-4f2a9c1",
    "1.0.0",
    "1.1.9",
    "1.2.0",
    "v1.2.7",
    "1.3.0-rc.1",
    "1.4.0",
    "v1.4.2",
    "1.4.10",
    "1.9.0-beta.2",
    "1.10.0-rc.1",
    "01.5.0",  # a leading zero: not strict semver, as Flux reads tags
    "1.6",  # partial: not a version either
    "1.6.1.2",
    "2.0.0-rc.1",
    "2.0.0",
    "v2.0.1",
    "0.9.12",
]


def pick(
    kind: str, argument: str, tags: list[str], pattern: str | None = None, extract: str = ""
) -> str:
    chosen = compile_policy(kind, argument, pattern, extract).choose(tags, stream="demo/app")  # type: ignore[arg-type]
    assert isinstance(chosen, Picked), chosen
    return chosen.tag


@pytest.mark.parametrize(
    ("range_", "expected"),
    [
        pytest.param(">=1.2 <2", "1.4.10", id="newest-1.x-release"),
        pytest.param(">=1.2, <2", "1.4.10", id="comma-is-and"),
        pytest.param(">= 1.2 < 2", "1.4.10", id="spaces-after-operators"),
        pytest.param("^1.2", "1.4.10", id="caret"),
        pytest.param("~1.4", "1.4.10", id="tilde"),
        pytest.param("~>1.4.0", "1.4.10", id="tilde-alias"),
        pytest.param("1.4.x", "1.4.10", id="x-range"),
        pytest.param("=>1.2 =<1.4.2", "v1.4.2", id="aliases-and-v-prefix"),
        pytest.param("1.2 - 1.4.2", "v1.4.2", id="hyphen-range"),
        pytest.param("<1.2", "1.1.9", id="upper-bound-only"),
        pytest.param("*", "v2.0.1", id="any-release"),
        pytest.param(">=2.0.0", "v2.0.1", id="v-prefixed-highest"),
        pytest.param("<1 || >=2.0.1", "v2.0.1", id="alternatives"),
        pytest.param("<1", "0.9.12", id="zero-major"),
        # Pre-releases count only when every comparison of an alternative names one.
        pytest.param(">=1.2.0-0 <2", "1.4.10", id="one-pre-release-bound-is-not-enough"),
        pytest.param(">=1.5.0-0 <2.0.0-0", "1.10.0-rc.1", id="pre-releases-admitted"),
        pytest.param("^1.x-0", "1.10.0-rc.1", id="partial-with-pre-release"),
        pytest.param("1.x-0", "1.10.0-rc.1", id="bare-partial-with-pre-release"),
        pytest.param("~1.9.x-0", "1.9.0-beta.2", id="tilde-partial-with-pre-release"),
        pytest.param(">=1.3.0-0 <=1.3.0-z", "1.3.0-rc.1", id="bounded-pre-release"),
        pytest.param("^1.9.0-0", "1.10.0-rc.1", id="caret-keeps-next-major-rc-out"),
        pytest.param(">=2.0.0-0", "v2.0.1", id="release-beats-its-rc"),
        pytest.param("1.3.0-rc.1", "1.3.0-rc.1", id="exact-pre-release"),
    ],
)
def test_semver_picks_the_highest_version_in_range_among_twenty(range_: str, expected: str) -> None:
    assert pick("semver", range_, TWENTY) == expected
    # The order the stream lists its tags in does not matter.
    shuffled = TWENTY[:]
    random.Random(7).shuffle(shuffled)
    assert pick("semver", range_, shuffled) == expected


def test_strict_versions_only_as_flux_reads_tags() -> None:
    assert parse_version("v1.2.3") is not None
    assert parse_version("1.2.3-rc.1") is not None
    for tag in ("1.2", "v1", "01.2.3", "1.2.3.4", "vv1.2.3", "V1.2.3", "1.2.3-01", "latest", ""):
        assert parse_version(tag) is None, tag


def test_equal_versions_resolve_the_same_way_whatever_the_order() -> None:
    for tags in (["1.2.3", "v1.2.3"], ["v1.2.3", "1.2.3"]):
        assert pick("semver", "*", tags) == "v1.2.3"


def test_nothing_in_range_names_the_newest_seen() -> None:
    chosen = compile_policy("semver", ">=3", None, "").choose(TWENTY, stream="demo/app")
    assert chosen == Unmatched(
        'none of the 20 tags of ImageStream demo/app matches semver range ">=3" '
        "(newest seen: v2.0.1)"
    )


@pytest.mark.parametrize(
    ("kind", "argument", "tags", "why"),
    [
        ("semver", "*", [], "ImageStream demo/app has no tag with an image yet"),
        (
            "semver",
            "*",
            ["latest", "1.6"],
            "none of the 2 tags of ImageStream demo/app is a semantic version such as 1.2.3",
        ),
        (
            "numerical",
            "asc",
            ["latest", "v1", "inf", "nan", "0x10"],
            "none of the 5 tags of ImageStream demo/app is a number",
        ),
    ],
)
def test_unmatched_says_why(kind: str, argument: str, tags: list[str], why: str) -> None:
    assert compile_policy(kind, argument, None, "").choose(tags, stream="demo/app") == Unmatched(
        why
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "order", "expected"),
    [
        # asc (Flux's default): the last tag in ascending order; desc: the first.
        ("alphabetical", "asc", "v2.0.1"),
        ("alphabetical", "desc", "0.9.12"),  # "." sorts before "1"
    ],
)
def test_alphabetical_orders_by_bytes(kind: str, order: str, expected: str) -> None:
    assert pick(kind, order, TWENTY) == expected


def test_alphabetical_timestamps_with_extract() -> None:
    tags = ["RELEASE.2024-12-01T10-00-00Z", "RELEASE.2025-01-07T08-30-00Z", "latest", "edge"]
    pattern, extract = r"^RELEASE\.(?P<timestamp>.*)Z$", "$timestamp"
    assert pick("alphabetical", "asc", tags, pattern, extract) == "RELEASE.2025-01-07T08-30-00Z"
    assert pick("alphabetical", "desc", tags, pattern, extract) == "RELEASE.2024-12-01T10-00-00Z"


@pytest.mark.parametrize(
    ("order", "expected"),
    [("asc", "100"), ("desc", "-")],
)
def test_numerical_reads_numbers_and_leaves_the_rest_out(order: str, expected: str) -> None:
    tags = ["9", "10", "100", "2.5", "1e1", "latest", "v3"]
    got = pick("numerical", order, tags)
    if order == "asc":
        assert got == expected  # 100 > 1e1 == 10 > 9 > 2.5: not the alphabetical "9"
    else:
        assert got == "2.5"


def test_numerical_build_numbers_from_a_pattern() -> None:
    tags = [
        "main-4f2a9c1-1700000100",
        "main-77aa001-1700000999",
        "main-0000000-999",
        "pr-1-2000000000",
    ]
    pattern = r"^main-[a-f0-9]+-(?P<ts>[0-9]+)"
    assert pick("numerical", "asc", tags, pattern, "$ts") == "main-77aa001-1700000999"
    assert pick("numerical", "desc", tags, pattern, "${ts}") == "main-0000000-999"


@pytest.mark.parametrize(
    ("pattern", "extract", "expected"),
    [
        pytest.param(r"^v(?P<v>.*)$", "$v", "v1.4.2", id="named-group"),
        pytest.param(r"^v(.*)$", "$1", "v1.4.2", id="numbered-group"),
        pytest.param(r"^v(?P<v>.*)$", "${v}", "v1.4.2", id="braced"),
        pytest.param(r"^v", "", "v1.4.2", id="filter-without-extract"),
        pytest.param(
            r"^(?P<major>\d+)\.(?P<rest>.*)$", "${major}.$rest", "1.4.10", id="two-groups"
        ),
    ],
)
def test_filter_tags_then_extract(pattern: str, extract: str, expected: str) -> None:
    assert pick("semver", ">=1.2 <2", TWENTY, pattern, extract) == expected


def test_a_filter_that_keeps_nothing_says_so() -> None:
    chosen = compile_policy("semver", "*", r"^release-", "").choose(TWENTY, stream="demo/app")
    assert chosen == Unmatched(
        'none of the 20 tags of ImageStream demo/app matches the pattern "^release-" of '
        "spec.source.filterTags"
    )


def test_dollar_dollar_and_go_name_rules() -> None:
    # "$$" is a "$"; "$1x" is the group named "1x" (Go reads the longest name): here none.
    assert pick("alphabetical", "asc", ["a-1"], r"^(\w)-(\d)$", "$$$2") == "a-1"
    with pytest.raises(PolicyError, match='refers to group "1x"'):
        compile_policy("alphabetical", "asc", r"^(\w)-(\d)$", "$1x")


@pytest.mark.parametrize(
    ("kind", "argument", "pattern", "extract", "message"),
    [
        ("semver", ">=1.2 <<2", None, "", '"<<2" is not a comparison'),
        ("semver", "", None, "", "is empty"),
        ("semver", "!=1.2.3", None, "", '"!=1.2.3" is not a comparison'),
        ("semver", "^x-0", None, "", "wildcard with a pre-release"),
        ("semver", "1.x.3-0", None, "", "a number after a wildcard"),
        ("semver", "1.2.3-..", None, "", "identifier"),
        ("alphabetical", "up", None, "", 'order must be "asc" or "desc"'),
        ("semver", "*", "(", "", '"(" is not a regular expression'),
        ("semver", "*", r"^v(?P<v>.*)$", "$w", 'refers to group "w"'),
        ("semver", "*", r"^v(.*)$", "$2", 'refers to group "2"'),
        ("semver", "*", None, "$1", "extract needs a pattern"),
    ],
)
def test_invalid_policies_raise_one_sentence(
    kind: str, argument: str, pattern: str | None, extract: str, message: str
) -> None:
    with pytest.raises(PolicyError) as raised:
        compile_policy(kind, argument, pattern, extract)  # type: ignore[arg-type]
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


ALPHABET = string.printable + "^~<>=|,-.*xXv0123456789 ()$?{}[]\\\u00e9\u202e\ud800\U0001f600"


def _noise(rng: random.Random, longest: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, longest)))


def test_arbitrary_input_never_raises_anything_but_a_clean_error() -> None:
    rng = random.Random(20_261_130)
    fragments = [
        ">=",
        "<",
        "^",
        "~",
        "1",
        "2.0",
        "1.2.3",
        "-0",
        "-rc.1",
        "x",
        " ",
        ",",
        "||",
        " - ",
        "v",
    ]
    for case in range(3_000):
        if case % 2:
            text = "".join(rng.choice(fragments) for _ in range(rng.randint(0, 8)))
        else:
            text = _noise(rng, 24)
        pattern = rng.choice([None, _noise(rng, 12), r"^v(?P<v>.*)$", r"(\d+)"])
        extract = rng.choice(["", "$v", "$1", _noise(rng, 6)])
        kind = rng.choice(["semver", "alphabetical", "numerical"])
        argument = text if kind == "semver" else rng.choice(["asc", "desc", text])
        try:
            policy = compile_policy(kind, argument, pattern, extract)  # type: ignore[arg-type]
        except PolicyError as error:
            message = str(error)
            assert message.strip(), (case, text)
            assert "\n" not in message, (case, text)
            message.encode("utf-8")
            continue
        tags = [_noise(rng, 10) for _ in range(rng.randint(0, 12))] + rng.sample(TWENTY, 5)
        chosen = policy.choose(tags, stream="demo/app")
        if isinstance(chosen, Picked):
            assert chosen.tag in tags, (case, text)
        else:
            chosen.message.encode("utf-8")
