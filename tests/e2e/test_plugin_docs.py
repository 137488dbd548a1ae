"""docs/plugin.md shows what kubectl-imagetrigger really prints.

The page's YAML objects are created in a fresh namespace, the operator runs while
``tools:latest`` moves once and ``app:latest`` twice (digests fixed, so the outputs are
reproducible), it is stopped and ``app:latest`` moves once more; then every command of the
page's ``console`` blocks runs, in order, through the installed entry point, and what it
prints (standard output, then standard error) must be the block's text. Times, ages and the
namespace's name are the only differences allowed, and spacing (the page was made in a
namespace called demo, the test's has a longer name).

To refresh the page after a change to the output, print every example from a fresh control
plane (namespace demo) and paste:

    .venv/bin/python -m tests.e2e.test_plugin_docs
"""

from __future__ import annotations

import copy
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from imagestream_trigger.plugin.explain import Row, Verdict
from imagestream_trigger.plugin.render import LIST_COLUMNS, row_data
from tests.controlplane import openshift
from tests.controlplane.cluster import CRD_DIR, OPERATOR_CRD_DIR, ControlPlane
from tests.controlplane.kube import Kube, create_namespace, install_crds, object_path, path_for
from tests.controlplane.operator_process import OperatorProcess
from tests.e2e.objects import TRIGGERS, images_of, imported, workload_path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "plugin.md"
PLUGIN = Path(sys.executable).parent / "kubectl-imagetrigger"
COMMAND = "$ kubectl imagetrigger "
DOC_NAMESPACE = "demo"
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\n(?P<body>.*?)^```$", re.M | re.S)
TIME = re.compile(r"'?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ'?")
AGE = re.compile(r"\d+[smhdy](\d+[smhd])?")


@dataclass(frozen=True)
class Example:
    line: int
    args: list[str]
    expected: str


def blocks(lang: str) -> list[tuple[int, str]]:
    text = DOC.read_text()
    return [
        (text.count("\n", 0, m.start()) + 1, m["body"])
        for m in FENCE.finditer(text)
        if m["lang"] == lang
    ]


def examples() -> list[Example]:
    """Every ``$ kubectl imagetrigger ...`` of the page with the text that follows it."""
    found = []
    for line, body in blocks("console"):
        assert body.startswith(COMMAND), (
            f"docs/plugin.md:{line}: a console block must start with `{COMMAND.strip()}`: "
            "each one is run and compared by this test"
        )
        for chunk in filter(None, re.split(r"^(?=\$ )", body, flags=re.M)):
            command, _, output = chunk.partition("\n")
            assert command.startswith(COMMAND), (line, command)
            found.append(Example(line, shlex.split(command[len(COMMAND) :]), output))
    return found


def objects() -> list[dict[str, Any]]:
    return [
        document for _, body in blocks("yaml") for document in yaml.safe_load_all(body) if document
    ]


def normalize(text: str) -> list[str]:
    """Each line's words, with times and ages made placeholders."""
    lines = []
    for line in text.rstrip("\n").splitlines():
        words = []
        for word in line.split():
            if TIME.fullmatch(word):
                word = "<time>"
            elif AGE.fullmatch(word):
                word = "<age>"
            words.append(word)
        lines.append(" ".join(words))
    return lines


def set_up(kube: Kube, namespace: str, operator: Callable[[], OperatorProcess]) -> None:
    """The page's story: its objects, three imports while the operator runs, one after."""
    for written in objects():
        obj = copy.deepcopy(written)
        obj["metadata"]["namespace"] = namespace
        kube.create(object_path(obj, with_name=False), obj)
    running = operator()
    tools = imported(kube, namespace, "tools", image=openshift.digest_for("tools-1"))
    kube.wait_for(
        workload_path("CronJob", namespace, "report"),
        lambda c: images_of(c)["report"] == tools.reference,
    )
    trigger = path_for(TRIGGERS, "imagetriggers", namespace, "web")
    # One tag move at a time: the operator must see both, as two entries of history.
    for number in (1, 2):
        app = imported(kube, namespace, "app", image=openshift.digest_for(f"app-{number}"))
        kube.wait_for(
            trigger,
            lambda t, n=number: (
                t.get("status", {}).get("builds", {}).get("app-build", {}).get("build")
                == f"app-build-{n}"
                and len(t["status"].get("history", [])) == n
            ),
            timeout=30,
        )
        kube.wait_for(
            workload_path("Deployment", namespace, "api"),
            lambda d, image=app.reference: images_of(d)["api"] == image,
        )
    running.stop()
    imported(kube, namespace, "app", image=openshift.digest_for("app-3"))


def run(plane: ControlPlane, namespace: str, args: list[str]) -> str:
    env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig)}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    argv = [namespace if a == DOC_NAMESPACE else a for a in args]
    result = subprocess.run(
        [str(PLUGIN), *argv], env=env, capture_output=True, text=True, timeout=60
    )
    return (result.stdout + result.stderr).replace(namespace, DOC_NAMESPACE)


def test_the_page_shows_what_the_plugin_prints(
    control_plane: ControlPlane,
    kube: Kube,
    namespace: str,
    run_operator: Callable[..., OperatorProcess],
) -> None:
    set_up(kube, namespace, run_operator)
    checked = examples()
    assert len(checked) >= 8, "docs/plugin.md lost its examples"
    for example in checked:
        printed = run(control_plane, namespace, example.args)
        assert normalize(printed) == normalize(example.expected), (
            f"docs/plugin.md:{example.line}: `kubectl imagetrigger {shlex.join(example.args)}` "
            f"now prints:\n{printed}"
        )


def test_the_page_names_every_column_verdict_and_field() -> None:
    text = DOC.read_text()
    for column in LIST_COLUMNS:
        assert f"| `{column}` |" in text, column
    for verdict in Verdict:
        assert f"`{verdict}`" in text, verdict
    # The table of -o json fields, between its header and the next blank line.
    table = text.split("with these fields:", 1)[1].split("|---|---|", 1)[1].split("\n\n", 1)[0]
    first_cells = [line.split("|")[1] for line in table.splitlines() if line.startswith("|")]
    documented = {name for cell in first_cells for name in re.findall(r"`(\w+)`", cell)}
    printed = row_data(Row("ns", "ImageTrigger", "x", (), "", 0, 0, 0, "InSync", ""))
    assert documented == set(printed), documented ^ set(printed)


def main() -> int:
    """Print every example of the page, from a fresh control plane, to paste into it."""
    with ControlPlane() as plane:
        kube = Kube(plane.url, plane.admin_token, plane.ca_file)
        install_crds(
            kube, [*sorted(CRD_DIR.glob("*.yaml")), *sorted(OPERATOR_CRD_DIR.glob("*.yaml"))]
        )
        create_namespace(kube, DOC_NAMESPACE)
        set_up(kube, DOC_NAMESPACE, lambda: OperatorProcess(plane, kube, DOC_NAMESPACE).start())
        for example in examples():
            print(f"--- docs/plugin.md:{example.line}")
            print(f"{COMMAND}{shlex.join(example.args)}")
            print(run(plane, DOC_NAMESPACE, example.args), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
