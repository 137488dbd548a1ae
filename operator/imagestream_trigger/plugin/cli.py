"""``kubectl-imagetrigger``: arguments, exit codes, and one-line errors.

kubectl and oc run any ``kubectl-<name>`` found on PATH as ``kubectl <name>``,
passing the user's arguments only; so this parses -n/--namespace and -A itself
and takes the default namespace from the current kubeconfig context, as kubectl
does. Exit codes: 0 when the command answered (whatever the answer), 1 when the
API refused or failed, 2 for bad usage or unusable credentials. No traceback
reaches the user.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
from collections.abc import Sequence
from typing import Final, NoReturn

from imagestream_trigger import __version__
from imagestream_trigger.act.client import Api
from imagestream_trigger.api import TargetKind
from imagestream_trigger.plugin import render
from imagestream_trigger.plugin.cluster import (
    Approval,
    CommandError,
    approve,
    connect,
    default_namespace,
    digest_of,
    get_trigger,
    scope,
    set_suspend,
    snapshot,
)
from imagestream_trigger.plugin.explain import explain, history, rows

PROG: Final = "kubectl imagetrigger"

DESCRIPTION: Final = """\
What imagestream-trigger does with your workloads, and why.

Reads ImageTriggers, workloads carrying OpenShift's image.openshift.io/triggers
annotation, BuildConfigs and ImageStreams with your own credentials, and asks
the operator's own planner what it would write now. Writes nothing, except
spec.suspend of an ImageTrigger (suspend, resume) and its spec.approvedImage
(approve).
"""

EPILOG: Final = f"""\
examples:
  kubectl imagetrigger list -A
  kubectl imagetrigger why deploy/web -n demo
  kubectl imagetrigger history web -n demo
  kubectl imagetrigger suspend web -n demo
  kubectl imagetrigger approve web -n demo

Credentials and the default namespace come from $KUBECONFIG (or ~/.kube/config),
as for kubectl. Installed on PATH as kubectl-imagetrigger, it also runs as
'oc imagetrigger'. Run '{PROG} COMMAND --help' for a command's options.
"""

# Every spelling kubectl accepts for the kinds a trigger can follow, and the short names.
KIND_NAMES: Final = {
    TargetKind.Deployment: ("deployment", "deployments", "deploy", "apps"),
    TargetKind.StatefulSet: ("statefulset", "statefulsets", "sts", "apps"),
    TargetKind.DaemonSet: ("daemonset", "daemonsets", "ds", "apps"),
    TargetKind.CronJob: ("cronjob", "cronjobs", "cj", "batch"),
    TargetKind.BuildConfig: ("buildconfig", "buildconfigs", "bc", "build.openshift.io"),
}
KINDS_HELP: Final = (
    "deployment (deploy), statefulset (sts), daemonset (ds), cronjob (cj) or buildconfig (bc)"
)


class UsageError(Exception):
    """The command line cannot be understood; the message says how to fix it."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line instead of argparse's usage block followed by the error.
        raise UsageError(f"{message} (see '{self.prog} --help')")


def parse_kind(word: str) -> TargetKind:
    """A kind as kubectl spells it: "deploy", "Deployment", "deployments.apps", ..."""
    name, _, group = word.lower().partition(".")
    for kind, (singular, plural, short, kind_group) in KIND_NAMES.items():
        if name in (singular, plural, short) and group in ("", kind_group):
            return kind
    raise UsageError(f"unknown kind {word!r}: use {KINDS_HELP}")


def parse_target(words: Sequence[str]) -> tuple[TargetKind, str]:
    """KIND/NAME, or KIND NAME, as kubectl takes them."""
    if len(words) == 1:
        kind, slash, name = words[0].partition("/")
        if not slash:
            try:
                parse_kind(kind)
            except UsageError:
                raise UsageError(
                    f"{kind!r} names no kind: write KIND/NAME, for example deploy/{kind}"
                ) from None
            raise UsageError(f"which one? Write KIND/NAME, for example {kind}/web")
    elif len(words) == 2:
        kind, name = words
    else:
        raise UsageError(f"expected KIND/NAME, got {len(words)} arguments: {' '.join(words)}")
    if not name or "/" in name:
        raise UsageError(f"{'/'.join(words)!r} is not KIND/NAME (for example deploy/web)")
    return parse_kind(kind), name


def _namespace_flag(parser: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup) -> None:
    parser.add_argument(
        "-n",
        "--namespace",
        metavar="NS",
        help="the namespace (default: the current kubeconfig context's, else default)",
    )


def _output_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=("json", "yaml"),
        help="print JSON or YAML for programs instead of the table",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    listing = sub.add_parser(
        "list",
        help="every ImageTrigger and annotated workload, and whether its targets are up to date",
        description=(
            "One row per ImageTrigger and per workload carrying image.openshift.io/triggers: "
            "its source (namespace/stream:tag), the image the source resolves to now, how many "
            "targets are up to date, would be written now (pending) or cannot be (failed), a "
            "status word, and how long ago the operator last wrote one."
        ),
    )
    where = listing.add_mutually_exclusive_group()
    _namespace_flag(where)
    where.add_argument("-A", "--all-namespaces", action="store_true", help="list every namespace")
    _output_flag(listing)

    why = sub.add_parser(
        "why",
        help="which triggers follow an object, what each would write now, and why not",
        description=(
            "Which triggers follow the object (entries of its image.openshift.io/triggers "
            "annotation, ImageTriggers naming or selecting it), what each would write now, "
            "and if nothing, why: paused, source not found, tag not resolved, in sync, "
            "suspended, invalid (with the problem). The answer comes from the operator's own "
            f"planner. KIND: {KINDS_HELP}. Exit code 0 whatever the answer."
        ),
    )
    why.add_argument("target", metavar="KIND/NAME", help="e.g. deploy/web or bc/app-build")
    why.add_argument("name", nargs="?", metavar="NAME", help="the name, if KIND is given alone")
    _namespace_flag(why)
    _output_flag(why)

    past = sub.add_parser(
        "history",
        help="an ImageTrigger's image changes (newest first) and build records",
        description=(
            "The ImageTrigger's status.history, newest first: when each image arrived, its "
            "digest, the targets written for it and those failing; then its build records "
            "(status.builds): the image each BuildConfig was last built from, and the Build."
        ),
    )
    past.add_argument("name", metavar="NAME", help="the ImageTrigger")
    _namespace_flag(past)
    _output_flag(past)

    for command, value in (("suspend", True), ("resume", False)):
        effect = (
            "the operator then writes nothing to its targets and starts no build (it still "
            "reports what it would do)"
            if value
            else "its targets then catch up with the source at the operator's next pass"
        )
        patch = sub.add_parser(
            command,
            help=f"set an ImageTrigger's spec.suspend to {str(value).lower()}",
            description=f"Set the ImageTrigger's spec.suspend to {str(value).lower()}: {effect}.",
        )
        patch.add_argument("name", metavar="NAME", help="the ImageTrigger")
        _namespace_flag(patch)
        patch.set_defaults(suspend=value)

    approval = sub.add_parser(
        "approve",
        help="approve the image an ImageTrigger holds for approval (spec.approvedImage)",
        description=(
            "With spec.rollout.approval Manual, an ImageTrigger applies a new image only once "
            "spec.approvedImage names it; until then status.pending shows it. This writes "
            "spec.approvedImage (a merge patch, so whoever may edit the ImageTrigger's spec "
            "may approve): the pending image's digest, or the one given with --image. A newer "
            "image that arrives later waits for its own approval."
        ),
    )
    approval.add_argument("name", metavar="NAME", help="the ImageTrigger")
    _namespace_flag(approval)
    approval.add_argument(
        "--image",
        metavar="sha256:...",
        help="approve this digest (or a reference pinned to it) instead of the pending image",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        if args.command == "why":
            args.target = parse_target([args.target, *([args.name] if args.name else [])])
        if args.command == "approve" and args.image is not None and not digest_of(args.image):
            raise UsageError(
                f"--image {args.image!r} names no image digest: give sha256:<64 hex digits> "
                "or a reference pinned to one (repo@sha256:...)"
            )
        return asyncio.run(_run(args))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except CommandError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (| head): nothing more to say, and nothing to say it to.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as error:  # a bug: still one line, never a traceback
        print(f"error: unexpected {type(error).__name__}: {error}", file=sys.stderr)
        return 1


async def _run(args: argparse.Namespace) -> int:
    api = await connect()
    try:
        namespace = args.namespace or default_namespace()
        now = dt.datetime.now(dt.UTC)
        match args.command:
            case "list":
                return await _list(api, "" if args.all_namespaces else namespace, args, now)
            case "why":
                return await _why(api, namespace, args)
            case "history":
                found = history(await get_trigger(api, namespace, args.name))
                _print(render.history_data(found), args.output, render.history_lines(found, now))
                return 0
            case "approve":
                done = await approve(api, namespace, args.name, args.image)
                print(_approve_message(namespace, args.name, done))
                return 0
            case _:
                before = await set_suspend(api, namespace, args.name, args.suspend)
                print(_suspend_message(namespace, args.name, before, args.suspend))
                return 0
    finally:
        await api.close()


async def _list(api: Api, namespace: str, args: argparse.Namespace, now: dt.datetime) -> int:
    found_snapshot = await snapshot(api, namespace)
    for note in found_snapshot.notes:
        print(f"note: {note}", file=sys.stderr)
    found = rows(found_snapshot)
    if not found and not args.output:
        print(f"No ImageTriggers or annotated workloads found {scope(namespace)}.", file=sys.stderr)
        return 0
    _print(render.list_data(found), args.output, render.list_lines(found, now))
    return 0


async def _why(api: Api, namespace: str, args: argparse.Namespace) -> int:
    kind, name = args.target
    found_snapshot = await snapshot(api, namespace)
    for note in found_snapshot.notes:
        print(f"note: {note}", file=sys.stderr)
    answer = explain(found_snapshot, kind, namespace, name)
    if not answer.exists and not answer.followers:
        raise CommandError(f'{kind} "{name}" not found {scope(namespace)}')
    _print(render.why_data(answer), args.output, render.why_lines(answer))
    if not answer.exists:
        raise CommandError(f'{kind} "{name}" not found {scope(namespace)}')
    return 0


def _print(data: dict[str, object], output: str | None, lines: list[str]) -> None:
    if output:
        sys.stdout.write(render.dump(data, output))
    else:
        print("\n".join(lines))


def _approve_message(namespace: str, name: str, done: Approval) -> str:
    what = f"imagetrigger {namespace}/{name}"
    if done.approved == done.before:
        said = f"{what}: {done.approved} is already approved (spec.approvedImage): nothing changed"
    else:
        said = f"{what}: approved {done.approved} (spec.approvedImage)"
        if done.pending and digest_of(done.pending) == digest_of(done.approved):
            said += f"; the operator applies {done.pending} at its next pass"
    if done.pending and digest_of(done.pending) != digest_of(done.approved):
        said += f"\nnote: the image pending approval is another one: {done.pending}"
    if not done.manual:
        said += "\nnote: spec.rollout.approval is not Manual: images are applied without approval"
    return said


def _suspend_message(namespace: str, name: str, before: bool, suspend: bool) -> str:
    what = f"imagetrigger {namespace}/{name}"
    if before == suspend:
        state = "suspended" if suspend else "not suspended"
        return (
            f"{what} is already {state} (spec.suspend is {str(suspend).lower()}): nothing changed"
        )
    change = f"spec.suspend: {str(before).lower()} -> {str(suspend).lower()}"
    if suspend:
        return (
            f"{what} suspended ({change}): the operator writes nothing to its targets until resumed"
        )
    return f"{what} resumed ({change}): its targets catch up with the source at the next pass"


if __name__ == "__main__":
    sys.exit(main())
