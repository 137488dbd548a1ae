"""The docs against the code they describe, without a cluster.

Each test reads a document and the source of truth at test time, so a change on either
side that the other does not follow fails here:

- README's settings table against ``Settings`` and the ``run`` command's flags;
- alert names in every page against manifests/prometheusrule.yaml, and docs/alerts.md
  having a section for each shipped alert;
- docs/imagetrigger.md's field tables and quoted patterns against the shipped CRD;
- docs/security.md's table against the ClusterRole;
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
# Files another branch adds: naming one is fine while it does not exist yet; once it
# exists, it is checked like any other (and this set loses it).
PENDING_PAGES: set[str] = set()


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


def row_variables(cell: str) -> list[str]:
    """The environment variables a row names, ``..._SUFFIX`` expanded (one Settings field)."""
    every = [ENV_PREFIX + field.upper() for field in Settings.model_fields]
    variables = []
    for named in re.findall(r"`((?:\.\.\.|[A-Z])[A-Z_]*)`", cell):
        if named.startswith("..."):
            matching = [v for v in every if v.endswith(named[3:])]
            assert len(matching) == 1, f"{named} stands for none or several of {every}"
            named = matching[0]
        variables.append(named)
    return variables


def row_flags(cell: str) -> list[str]:
    """The flags a row names, ``--[no-]name`` as both."""
    flags = []
    for flag in re.findall(r"(?<![\w-])(--?(?:\[no-\])?[A-Za-z][\w-]*)", cell):
        if "[no-]" in flag:
            flags += [flag.replace("[no-]", ""), flag.replace("[no-]", "no-")]
        else:
            flags.append(flag)
    return flags


def settings_rows() -> list[tuple[list[str], list[str], list[str]]]:
    """README's settings table: (variables, flags, defaults) per row."""
    rows = []
    for cells in table_after(README.read_text(), "| flag | environment | default | meaning |"):
        variables = row_variables(cells[1])
        assert variables, f"a row without an environment variable: {cells}"
        defaults = [cells[2]] if len(variables) == 1 else cells[2].split(", ")
        assert len(defaults) == len(variables), f"one default per variable: {cells}"
        rows.append((variables, row_flags(cells[0]), defaults))
    return rows


def test_readme_settings_table_lists_every_setting_and_nothing_else() -> None:
    rows = settings_rows()
    listed = [v for variables, _, _ in rows for v in variables]
    expected = {ENV_PREFIX + field.upper(): field for field in Settings.model_fields}

    assert len(listed) == len(set(listed)), f"listed twice: {listed}"
    assert set(listed) == set(expected), (
        f"missing from README's settings table: {sorted(set(expected) - set(listed))}; "
        f"listed there but not settings: {sorted(set(listed) - set(expected))}"
    )
    options = run_options()
    for variables, flags, defaults in rows:
        unknown = [f for f in flags if f not in options]
        assert not unknown, f"README names flags `imagestream-trigger run` does not have: {unknown}"
        for variable, default in zip(variables, defaults, strict=True):
            field = expected[variable]
            assert flag_for(field) in flags, f"{variable}: {flag_for(field)} is not in {flags}"
            code = shown_default(field)
            # An empty default may be said in words ("the pod's namespace").
            written = default.strip("`")
            assert written == code or code == "(empty)", (
                f"{variable}: README's default {default!r}, the code's {code!r}"
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
STANDARD_TYPES = {
    "spec.targets[].selector": "a Kubernetes label selector",
    "spec.rollout.canary.selector": "a Kubernetes label selector",
}


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
            # A list's items are written "[]": `spec.rollout.notify[].secretRef`.
            named = re.match(r"`((?:spec|status)(?:\.\w+(?:\[\])?)*)`", heading.group(1))
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


# -- docs/security.md against the ClusterRole --------------------------------------------

SECURITY_DOC = ROOT / "docs" / "security.md"
CLUSTER_ROLE = ROOT / "manifests" / "rbac" / "cluster_role.yaml"


def granted() -> set[tuple[str, str, str]]:
    rules = yaml.safe_load(CLUSTER_ROLE.read_text())["rules"]
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_security_md_lists_exactly_what_the_clusterrole_grants() -> None:
    documented = set()
    for cells in table_after(SECURITY_DOC.read_text(), "| API group | resources | verbs |"):
        group = "" if cells[0] == "core" else cells[0].strip("`")
        # Backticked names with a dot are resourceNames (`v1.image.openshift.io`), not resources.
        resources = [r for r in re.findall(r"`([^`]+)`", cells[1]) if "." not in r]
        verbs = [v.strip() for v in cells[2].split(",")]
        documented |= {(group, r, v) for r in resources for v in verbs}
    assert documented == granted(), (
        f"in the ClusterRole, not in docs/security.md: {sorted(granted() - documented)}; "
        f"in docs/security.md, not granted: {sorted(documented - granted())}"
    )


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
