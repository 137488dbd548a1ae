"""The docs against the code they describe, without a cluster.

Each test reads a document and the source of truth at test time, so a change on either
side that the other does not follow fails here:

- README's settings table against ``Settings`` and the ``run`` command's flags;
- alert names in every page against manifests/prometheusrule.yaml, and docs/alerts.md
  having a section for each shipped alert;
- docs/imagetrigger.md's field tables and quoted patterns against the shipped CRD;
- every relative link and anchor, and every repository path named in backticks.

Metric names are checked against the registry by tests/e2e/test_docs.py.
"""

from __future__ import annotations

import argparse
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagestream_trigger import cli
from imagestream_trigger.settings import ENV_PREFIX, Settings, flag_for

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
ALERTS_DOC = ROOT / "docs" / "alerts.md"
IMAGETRIGGER_DOC = ROOT / "docs" / "imagetrigger.md"
PROMETHEUS_RULE = ROOT / "manifests" / "prometheusrule.yaml"
CRD = ROOT / "manifests" / "crd" / "imagetriggers.yaml"
# Pages other branches add (OLM, the oc plugin, Helm values): a link to one is fine while it
# does not exist yet; once it exists, its anchors are checked like any other page's.
PENDING_PAGES = {"docs/olm.md", "docs/plugin.md", "docs/helm.md"}


def doc_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def prose(path: Path) -> str:
    """The text outside fenced code blocks."""
    return re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)


def table_after(text: str, header: str) -> list[list[str]]:
    """The rows (cells stripped) of the Markdown table whose header line starts ``header``."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(header)), None)
    assert start is not None, f"no table starting {header!r}"
    rows = []
    for line in lines[start + 2 :]:  # past the header and its |---| line
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


# -- README's settings table --------------------------------------------------------------


def run_options() -> set[str]:
    """Every option string of ``imagestream-trigger run``."""
    parser = cli.build_parser()
    # argparse keeps its subcommands in a private action type; there is no public accessor.
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    run: argparse.ArgumentParser = subcommands.choices["run"]
    return set(run._option_string_actions)


def shown_default(field: str) -> str:
    """A field's default as the README's table writes it."""
    default = Settings.model_fields[field].default
    if isinstance(default, tuple):
        return "all" if not default else ",".join(default)
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return "(empty)" if default == "" else str(default)


def settings_rows() -> dict[str, list[str]]:
    """README's settings table, by the environment variable each row names."""
    rows = {}
    for cells in table_after(README.read_text(), "| flag | environment | default | meaning |"):
        variables = re.findall(rf"`({ENV_PREFIX}[A-Z_]+)`", cells[1])
        assert len(variables) == 1, f"one environment variable per row: {cells}"
        rows[variables[0]] = cells
    return rows


def test_readme_settings_table_lists_every_setting_and_nothing_else() -> None:
    rows = settings_rows()
    expected = {ENV_PREFIX + field.upper(): field for field in Settings.model_fields}

    assert set(rows) == set(expected), (
        f"missing from README's settings table: {sorted(set(expected) - set(rows))}; "
        f"listed there but not settings: {sorted(set(rows) - set(expected))}"
    )
    options = run_options()
    for variable, cells in rows.items():
        field = expected[variable]
        flags = re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", cells[0])
        assert flag_for(field) in flags, (
            f"{variable}: the flag {flag_for(field)} is not in {cells[0]}"
        )
        unknown = [f for f in flags if f not in options]
        assert not unknown, f"README names flags `imagestream-trigger run` does not have: {unknown}"
        default = shown_default(field)
        assert cells[2] == default, (
            f"{variable}: README's default {cells[2]!r}, the code's {default!r}"
        )


# -- alerts -------------------------------------------------------------------------------

ALERT_NAME = re.compile(r"\bImageStreamTrigger[A-Z][A-Za-z]+\b")
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}


def shipped_alerts() -> set[str]:
    rule = yaml.safe_load(PROMETHEUS_RULE.read_text())
    return {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}


def test_every_alert_named_in_the_docs_is_shipped() -> None:
    shipped = shipped_alerts()
    assert len(shipped) >= 5
    for path in DOCS:
        unknown = set(ALERT_NAME.findall(path.read_text())) - shipped
        assert not unknown, f"{doc_id(path)} names alerts that do not ship: {sorted(unknown)}"


def test_alerts_doc_has_a_section_for_each_shipped_alert() -> None:
    sections = set(re.findall(r"^## (\S+)\s*$", ALERTS_DOC.read_text(), re.M))
    assert sections == shipped_alerts(), "docs/alerts.md: one `## AlertName` section per alert"
    for section in ALERTS_DOC.read_text().split("\n## ")[1:]:
        for part in ("**Meaning.**", "**Impact.**", "**Diagnosis.**", "**Fix.**"):
            assert part in section, f"docs/alerts.md, {section.split()[0]}: no {part}"


def test_the_number_of_alerts_is_said_right() -> None:
    count = len(shipped_alerts())
    values = ROOT / "helm" / "imagestream-trigger" / "values.yaml"
    for path in [*DOCS, values]:
        for word in re.findall(r"\b(\w+) alerts\b", path.read_text()):
            if word.lower() in NUMBERS:
                assert NUMBERS[word.lower()] == count, f"{doc_id(path)}: {word} alerts"


# -- docs/imagetrigger.md against the CRD -------------------------------------------------

# Standard Kubernetes types the document describes as a whole, not field by field.
STANDARD_TYPES = {"spec.targets[].selector": "a Kubernetes label selector"}


def crd_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["storage"]]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def schema_paths(schema: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, schema) of every field; array items add ``[]``, map values ``{}``."""
    for name, child in (schema.get("properties") or {}).items():
        path = f"{prefix}.{name}" if prefix else name
        yield path, child
        yield from schema_paths(child, path)
        if child.get("type") == "array" and "items" in child:
            yield from schema_paths(child["items"], path + "[]")
        if isinstance(child.get("additionalProperties"), dict):
            yield from schema_paths(child["additionalProperties"], path + "{}")


def documented_fields() -> dict[str, str]:
    """Field paths docs/imagetrigger.md documents, with where: headings and field tables."""
    paths = dict(schema_paths(crd_schema()))
    found: dict[str, str] = {}
    section = ""  # the field path the current heading is about
    lines = IMAGETRIGGER_DOC.read_text().splitlines()
    for number, line in enumerate(lines, 1):
        heading = re.match(r"^#+ (.*)$", line)
        if heading:
            named = re.match(r"`((?:spec|status)(?:\.\w+)*)`", heading.group(1))
            section = named.group(1) if named else ""
            if heading.group(1) == "ImageTrigger status":
                section = "status"
            if named:
                found[section] = f"line {number}"
            continue
        first = re.match(r"^\| `(\w+)(\[\])?` \|", line)
        if section and first:
            parent = section + ("[]" if paths.get(section, {}).get("type") == "array" else "")
            found[f"{parent}.{first.group(1)}"] = f"line {number}"
    return found


def test_every_field_imagetrigger_md_documents_is_in_the_crd() -> None:
    paths = dict(schema_paths(crd_schema()))
    documented = documented_fields()
    assert len(documented) > 10, documented
    unknown = {p: where for p, where in documented.items() if p not in paths}
    assert not unknown, f"docs/imagetrigger.md documents fields the CRD lacks: {unknown}"


def test_every_spec_field_and_status_field_is_documented() -> None:
    documented = documented_fields()
    missing = []
    for path, _ in schema_paths(crd_schema()):
        if any(path.startswith(standard + ".") for standard in STANDARD_TYPES):
            continue
        spec_field = path.startswith("spec.")
        top_status_field = path.startswith("status.") and path.count(".") == 1
        if (spec_field or top_status_field) and path not in documented:
            missing.append(path)
    assert not missing, (
        f"CRD fields docs/imagetrigger.md does not document: {missing} (a `### spec.FIELD` "
        "section, or a row of the field table under its parent's section)"
    )


def test_patterns_and_enums_quoted_in_imagetrigger_md_are_the_crds() -> None:
    schemas = [s for _, s in schema_paths(crd_schema())]
    patterns = {s["pattern"] for s in schemas if "pattern" in s}
    enums = [s["enum"] for s in schemas if "enum" in s]
    text = IMAGETRIGGER_DOC.read_text()

    quoted = re.findall(r"should match '([^']+)'", text)
    assert quoted
    stale = [p for p in quoted if p not in patterns]
    assert not stale, f"docs/imagetrigger.md quotes patterns the CRD no longer has: {stale}"
    for listed in re.findall(r"supported values: ((?:\"\w+\"(?:, )?)+)", text):
        values = re.findall(r'"(\w+)"', listed)
        assert values in enums, f"docs/imagetrigger.md quotes an enum the CRD lacks: {values}"


# -- links and paths ----------------------------------------------------------------------


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown page."""
    seen: dict[str, int] = {}
    result = set()
    for line in prose(path).splitlines():
        heading = re.match(r"^#+ (.*)$", line)
        if not heading:
            continue
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(1)).lower()
        slug = "".join(
            c
            for c in title
            if c in " -_" or unicodedata.category(c)[0] in "LN"  # letters and numbers
        ).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def links(path: Path) -> Iterator[str]:
    text = re.sub(r"`[^`\n]*`", "", prose(path))  # code spans hold regexes, not links
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if not re.match(r"^[a-z]+:", target):  # not http:, https:, mailto:
            yield target


@pytest.mark.parametrize("path", DOCS, ids=doc_id)
def test_links_and_anchors_resolve(path: Path) -> None:
    for target in links(path):
        file, _, anchor = target.partition("#")
        page = (path.parent / file).resolve() if file else path
        where = f"{doc_id(path)} links to {target}"
        if not page.exists():
            assert str(page.relative_to(ROOT)) in PENDING_PAGES, f"{where}: no such file"
            continue
        if anchor:
            assert page.suffix == ".md", where
            assert anchor in anchors(page), f"{where}: no such heading in {page.name}"


REPO_PATH = re.compile(
    r"`((?:manifests|helm|docs|tests|operator|packaging|bench|scripts)/[^`\s]*"
    r"|Dockerfile|\.dockerignore|Makefile|pyproject\.toml|requirements\.lock)`"
)


@pytest.mark.parametrize("path", DOCS, ids=doc_id)
def test_repository_paths_named_in_the_docs_exist(path: Path) -> None:
    for named in REPO_PATH.findall(path.read_text()):
        if any(mark in named for mark in ("*", "<", "NAME", "...")):
            continue  # a pattern, not a path
        target = ROOT / named.rstrip("/")
        pending = named in PENDING_PAGES
        assert target.exists() or pending, f"{doc_id(path)} names {named}, which does not exist"
