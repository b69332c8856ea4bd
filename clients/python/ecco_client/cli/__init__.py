"""`ecco-client`: the daemon from a terminal.

Errors end in one sentence and a non-zero exit, never a traceback; they name this command's flags
(``--connection-file``), not the Python arguments behind them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from ecco_protocol.cli_help import DefaultsHelpFormatter, global_options
from rich.console import Console

from ecco_client.blocking import connect
from ecco_client.cli.errors import CommandError, describe_error
from ecco_client.cli.progress_bar import RichProgress
from ecco_client.exceptions import DaemonUnavailable, EccoError

USAGE_ERROR = 2


def _add_global(parser: argparse.ArgumentParser, defaults: bool) -> None:
    def default(value: Any) -> dict[str, Any]:
        return {"default": value} if defaults else {}

    parser.add_argument("--address", help="daemon address, tcp://HOST:PORT or ipc://PATH "
                        "(default: the connection file's)", **default(None))
    parser.add_argument("--connection-file", type=Path, help="the daemon's connection file: address, user "
                        "and key (default: $ECCO_CONNECTION_FILE, else the local daemon's)", **default(None))
    parser.add_argument("--ssh", help="reach the daemon through an SSH tunnel to user@host[:port] "
                        "(default: connect directly)", **default(None))
    parser.add_argument("--timeout", type=float, help="seconds of daemon silence before giving up "
                        "(default: 10)", **default(10.0))
    parser.add_argument("--no-progress", action="store_true", help="draw no progress bar for long work "
                        "(default: drawn on a terminal)", **default(False))


def build_parser() -> argparse.ArgumentParser:
    common = global_options(_add_global)
    parser = argparse.ArgumentParser(prog="ecco-client", description="Talk to a running ecco-daemon.",
                                     formatter_class=DefaultsHelpFormatter)
    _add_global(parser, True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, parents=[common],
                              formatter_class=DefaultsHelpFormatter)

    generate = command("generate", "generate and print each token with its probability")
    generate.add_argument("prompt", help="the text to continue")
    generate.add_argument("-n", "--generate", type=int, default=10, help="new tokens")
    generate.add_argument("--model", default=None, help="a loaded model's name (default: the daemon's first)")
    generate.add_argument("--alternatives", type=int, default=3, help="top alternatives printed per token")
    generate.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    generate.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    generate.add_argument("--seed", type=int, default=None, help="sampling seed")

    explain = command("explain", "print the text's tokens colored by probability (and saliency), with numbers")
    explain.add_argument("text", help="the text to explain (every token after the first is scored)")
    explain.add_argument("--model", default=None, help="a loaded model's name (default: the daemon's first)")
    explain.add_argument("--attribution", default=None,
                         help="also color by this attribution method: gradient, grad_x_input, "
                              "integrated_gradients, occlusion")
    explain.add_argument("--foil", default=None,
                         help="contrastive saliency: why each token rather than this one (one token's text, "
                              "e.g. ' Berlin'); with no --attribution, grad_x_input of the contrast")
    explain.add_argument("--watch", action="append", default=None, metavar="TOKEN",
                         help="print the rank of this token (one token's text) at every layer, at the "
                              "saliency target's position or the last (repeatable)")
    explain.add_argument("--attention", action="store_true",
                         help="put the attention view (every layer and head) in the --html page")
    explain.add_argument("--steps", type=int, default=50, help="integrated gradients steps")
    explain.add_argument("-n", "--generate", type=int, default=0,
                         help="first continue the text by this many tokens, then explain it all")
    explain.add_argument("--target", type=int, default=None,
                         help="saliency of the token at this position (default: the first generated "
                              "token with --generate, else the last)")
    explain.add_argument("--surprisal", action="store_true", help="color by surprisal instead of probability")
    explain.add_argument("--json", action="store_true", help="print the numbers as JSON instead of colors")
    explain.add_argument("--html", type=Path, default=None,
                         help="also write one self-contained page with every view to this file")

    wait = command("wait", "wait until a daemon answers")
    wait.add_argument("--for", dest="seconds", type=float, default=120.0, help="seconds to wait")
    command("status", "print the daemon's status as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(highlight=False)
    errors = Console(stderr=True, highlight=False)
    try:
        if args.command == "wait":
            return wait(args, errors)
        with connect(args.address, connection_file=args.connection_file, timeout=args.timeout, ssh=args.ssh,
                     progress=False) as client:
            if args.command == "status":
                print(json.dumps(client.status(), indent=2, default=str))
                return 0
            if args.command == "explain":
                from ecco_client.cli.explain import explain

                return explain(client, args, console, RichProgress(errors, enabled=not args.no_progress))
            return print_generation(client, args, console)
    except CommandError as exc:
        errors.print(f"[red]error: {exc}[/red]", soft_wrap=True)
        return USAGE_ERROR
    except EccoError as exc:
        errors.print(f"[red]{describe_error(exc)}[/red]", soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        errors.print("[red]interrupted[/red]")
        return 130


def wait(args: argparse.Namespace, console: Console) -> int:
    deadline = time.monotonic() + args.seconds
    while True:
        try:
            with connect(args.address, connection_file=args.connection_file, timeout=2.0, ssh=args.ssh) as client:
                client.ping()
                return 0
        except DaemonUnavailable as exc:
            if time.monotonic() > deadline:
                console.print(f"[red]no daemon after {args.seconds:.0f}s: {describe_error(exc)}[/red]", soft_wrap=True)
                return 1
            time.sleep(0.5)


def print_generation(client: Any, args: argparse.Namespace, console: Console) -> int:
    lm = client.model(args.model)

    def on_token(event: dict[str, Any]) -> None:
        alternatives = ", ".join(f"{a['token']!r} {a['prob']:.3f}" for a in event["alternatives"])
        console.print(f"  {event['token']!r:>16}  p={event['prob']:.3f}   [dim]{alternatives}[/dim]")

    console.print(f"[bold]{args.prompt}[/bold]")
    out = lm.generate(args.prompt, generate=args.generate, alternatives=args.alternatives, do_sample=args.sample,
                      temperature=args.temperature, seed=args.seed, on_token=on_token, progress=False)
    console.print(f"\n[bold]{out.model}[/bold]: {args.prompt}[green]{out.generated_text}[/green]")
    console.print(f"[dim]{len(out.generated_tokens)} tokens, stop: {out.stop_reason}, result {out.result_id}[/dim]")
    return 0

