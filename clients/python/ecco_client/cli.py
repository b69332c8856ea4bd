"""`ecco-client`: the daemon from a terminal."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from ecco_client.blocking import connect
from ecco_client.exceptions import DaemonUnavailable, EccoError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecco-client", description="Talk to a running ecco-daemon.")
    parser.add_argument("--address", default=None, help="daemon address (default: from the connection file)")
    parser.add_argument("--connection-file", type=Path, default=None)
    parser.add_argument("--ssh", default=None, help="reach the daemon through an SSH tunnel to user@host[:port]")
    parser.add_argument("--timeout", type=float, default=10.0)
    sub = parser.add_subparsers(dest="command", required=True)
    generate = sub.add_parser("generate", help="generate and print each token with its probability")
    generate.add_argument("prompt")
    generate.add_argument("-n", "--generate", type=int, default=10)
    generate.add_argument("--model", default=None)
    generate.add_argument("--alternatives", type=int, default=3)
    generate.add_argument("--sample", action="store_true")
    generate.add_argument("--temperature", type=float, default=1.0)
    generate.add_argument("--seed", type=int, default=None)
    explain = sub.add_parser("explain", help="print the text's tokens colored by probability (and saliency)")
    explain.add_argument("text")
    explain.add_argument("--model", default=None)
    explain.add_argument("--attribution", default=None, help="also color by this attribution method")
    explain.add_argument("--target", type=int, default=None, help="saliency of this token position (default: last)")
    explain.add_argument("--surprisal", action="store_true", help="color by surprisal instead of probability")
    wait = sub.add_parser("wait", help="wait until a daemon answers")
    wait.add_argument("--for", dest="seconds", type=float, default=120.0)
    sub.add_parser("status", help="print the daemon's status as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(highlight=False)
    try:
        if args.command == "wait":
            return wait(args, console)
        with connect(args.address, connection_file=args.connection_file, timeout=args.timeout, ssh=args.ssh) as client:
            if args.command == "status":
                print(json.dumps(client.status(), indent=2, default=str))
                return 0
            if args.command == "explain":
                return print_explanation(client, args, console)
            return print_generation(client, args, console)
    except EccoError as exc:
        console.print(f"[red]{type(exc).__name__}: {exc}[/red]")
        return 1


def wait(args: argparse.Namespace, console: Console) -> int:
    deadline = time.monotonic() + args.seconds
    while True:
        try:
            with connect(args.address, connection_file=args.connection_file, timeout=2.0, ssh=args.ssh) as client:
                client.ping()
                return 0
        except DaemonUnavailable as exc:
            if time.monotonic() > deadline:
                console.print(f"[red]no daemon after {args.seconds:.0f}s: {exc}[/red]")
                return 1
            time.sleep(0.5)


def print_explanation(client: Any, args: argparse.Namespace, console: Console) -> int:
    from ecco_client.render.terminal import terminal_view

    methods = [args.attribution] if args.attribution else []
    out = client.model(args.model).analyze(args.text, attribution=methods)
    console.print(terminal_view("probability", out.token_probabilities().data,
                                scale="surprisal" if args.surprisal else "probability"))
    if methods:
        saliency = out.primary_attributions(args.attribution)
        console.print(terminal_view("saliency", saliency.data, target=args.target))
    return 0


def print_generation(client: Any, args: argparse.Namespace, console: Console) -> int:
    lm = client.model(args.model)
    def on_token(event: dict[str, Any]) -> None:
        alternatives = ", ".join(f"{a['token']!r} {a['prob']:.3f}" for a in event["alternatives"])
        console.print(f"  {event['token']!r:>16}  p={event['prob']:.3f}   [dim]{alternatives}[/dim]")

    console.print(f"[bold]{args.prompt}[/bold]")
    out = lm.generate(args.prompt, generate=args.generate, alternatives=args.alternatives, do_sample=args.sample,
                      temperature=args.temperature, seed=args.seed, on_token=on_token)
    console.print(f"\n[bold]{out.model}[/bold]: {args.prompt}[green]{out.generated_text}[/green]")
    console.print(f"[dim]{len(out.generated_tokens)} tokens, stop: {out.stop_reason}, result {out.result_id}[/dim]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
