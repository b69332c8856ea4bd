"""`ecco-daemon serve | status | pull | user`: the daemon's command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from ecco_protocol.cli_help import DefaultsHelpFormatter, global_options
from ecco_protocol.connection_file import default_state_dir, read_connection_file

from ecco_daemon.config import DEFAULT_ADDRESS, DaemonConfig
from ecco_daemon.models.embedded import DEFAULT_MODEL
from ecco_daemon.server.errors import OperationError
from ecco_daemon.server.users import ADMIN, UserStore, connection_file_for, write_user_connection_file


def _add_global(parser: argparse.ArgumentParser, defaults: bool) -> None:
    def default(value: object) -> dict[str, object]:
        return {"default": value} if defaults else {}

    parser.add_argument("--state-dir", type=Path, help="users, keys and connection files "
                        "(default: $ECCO_DAEMON_HOME or ~/.local/share/ecco-daemon)", **default(None))
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages (default: off)",
                        **default(False))


def build_parser() -> argparse.ArgumentParser:
    common = global_options(_add_global)
    parser = argparse.ArgumentParser(prog="ecco-daemon", description=__doc__, formatter_class=DefaultsHelpFormatter)
    _add_global(parser, True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(parent: argparse._SubParsersAction, name: str, help: str) -> argparse.ArgumentParser:
        return parent.add_parser(name, help=help, description=help, parents=[common],
                                 formatter_class=DefaultsHelpFormatter)

    serve = command(sub, "serve", "run the daemon")
    serve.add_argument("--address", default=DEFAULT_ADDRESS, help="ZeroMQ endpoint, tcp://HOST:PORT or ipc://PATH")
    serve.add_argument("--model", action="append", default=[],
                       help=f"model to load at start (repeatable): an alias, folder, .gguf file or hub id; "
                            f"default {DEFAULT_MODEL}")
    serve.add_argument("--no-model", action="store_true", help="start with no model loaded")
    serve.add_argument("--device", default=None, help="cpu, cuda, cuda:1 or auto (default: cuda if present)")
    serve.add_argument("--dtype", default="float32", choices=["auto", "float32", "float16", "bfloat16"],
                       help="the models' weights' precision")
    serve.add_argument("--compile-decode", default="auto", choices=["auto", "on", "off"],
                       help="decode over a static cache with a compiled step (CUDA graphs); "
                            "auto: where CUDA is present (default)")
    serve.add_argument("--max-new-tokens", type=int, default=1024, help="new tokens one generation may ask for")
    serve.add_argument("--result-ttl", type=float, default=3600.0, help="seconds a stored result is kept")
    serve.add_argument("--result-store-mb", type=int, default=2048, help="memory cap of the result store")
    serve.add_argument("--curve", action="store_true",
                       help="encrypt with ZeroMQ CURVE (a server keypair kept in the state dir); "
                            "required to bind beyond loopback")
    serve.add_argument("--trust-remote-code", action="append", default=[], metavar="MODEL",
                       help="let this model (as named in --model or models.load) run its own code (repeatable)")
    serve.add_argument("--max-input-tokens", type=int, default=4096, help="input + new tokens of one request")
    serve.add_argument("--max-message-mb", type=float, default=64.0,
                       help="largest message accepted; a larger frame disconnects its sender unread")
    serve.add_argument("--max-job-cost", type=int, default=1_000_000,
                       help="work units (tokens x attribution steps) of one request; larger is TOO_LARGE")
    serve.add_argument("--max-queued", type=int, default=64, help="jobs one user may have queued")
    serve.add_argument("--job-time-limit", type=float, default=600.0,
                       help="seconds a job may run; past it the job ends with TIMEOUT")
    serve.add_argument("--reply-journal-mb", type=float, default=32.0,
                       help="memory for final replies kept for clients that fell behind (requests.reply)")
    serve.add_argument("--reply-journal-ttl", type=float, default=120.0,
                       help="seconds a final reply stays fetchable with requests.reply")
    serve.add_argument("--client-grace", type=float, default=60.0,
                       help="seconds without a heartbeat after which a client's jobs are cancelled")
    serve.add_argument("--max-batch-size", type=int, default=16,
                       help="generation requests on one model decoded together")
    ray = serve.add_argument_group("model replicas on Ray (docs/scale.md; needs the 'ray' extra)")
    ray.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                     help="run models as Ray actors: with no ADDRESS a local Ray instance on loopback, "
                          "with one (HOST:PORT, as `ray start --head` prints) that cluster")
    ray.add_argument("--replicas", type=int, default=1, help="replicas of each model (with --ray)")
    ray.add_argument("--gpus-per-replica", type=float, default=0.0, help="GPUs each replica gets (with --ray)")
    ray.add_argument("--cpus-per-replica", type=float, default=1.0, help="CPUs each replica gets (with --ray)")
    ray.add_argument("--ray-num-cpus", type=int, default=None,
                     help="CPUs a local Ray instance offers (default: this machine's)")

    status = command(sub, "status", "ask a running daemon for its state")
    status.add_argument("--connection-file", type=Path, default=None,
                        help="the connection file to use (default: the admin's, in the state dir)")
    status.add_argument("--address", default=None, help="ask this address (default: the connection file's)")
    status.add_argument("--json", action="store_true", help="print raw JSON")

    pull = command(sub, "pull", "fetch and cache a model ahead of time")
    pull.add_argument("model", nargs="?", default=DEFAULT_MODEL,
                      help=f"an alias, folder, .gguf file or hub id (default: {DEFAULT_MODEL})")

    user = command(sub, "user", "add, list or remove users (a running daemon sees changes at once)")
    user_sub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = command(user_sub, "add", "create a user and write their connection file")
    add.add_argument("name", help="the new user's name")
    add.add_argument("--role", choices=["user", "admin"], default="user", help="what the user may do")
    add.add_argument("--address", default=None,
                     help="address to put in the connection file (default: the running daemon's)")
    command(user_sub, "list", "list users and roles")
    remove = command(user_sub, "remove", "remove a user; their key stops working at once")
    remove.add_argument("name", help="the user to remove")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    state_dir = args.state_dir or default_state_dir()
    if args.command == "serve":
        return serve(args, state_dir)
    if args.command == "status":
        return status(args, state_dir)
    if args.command == "user":
        return run_user_command(args, state_dir)
    if args.command == "pull":
        return pull(args.model)
    return 2


def pull(model: str) -> int:
    from ecco_daemon.models.errors import ModelLoadError
    from ecco_daemon.models.loader import pull_model

    try:
        print(pull_model(model, hub_hint=pull_offline_hint(model)))
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def pull_offline_hint(model: str) -> str:
    """What to do when the hub cannot be reached: fetch elsewhere and bring the folder here (not "run
    ecco-daemon pull", which is what just failed)."""
    folder = model.rstrip("/").split("/")[-1]
    hint = (f"If {model!r} is the right id but this machine cannot reach the hub: on a machine that can, run "
            f"`huggingface-cli download {model} --local-dir {folder}`, copy {folder} here and start the "
            f"daemon with `ecco-daemon serve --model {folder}`.")
    if os.environ.get("HF_HUB_OFFLINE", "").strip() not in ("", "0"):
        hint += " HF_HUB_OFFLINE is set, so nothing was downloaded; unset it if this machine is online."
    return hint


def serve(args: argparse.Namespace, state_dir: Path) -> int:
    from ecco_daemon.server.curve import refuse_unsafe_bind

    refuse_unsafe_bind(args.address, args.curve)  # before the heavy imports and the model loads
    from ecco_daemon.daemon import Daemon

    models = [] if args.no_model else (args.model or [DEFAULT_MODEL])
    config = DaemonConfig(address=args.address, models=models, device=args.device, dtype=args.dtype,
                          compile_decode=args.compile_decode,
                          state_dir=state_dir, max_new_tokens=args.max_new_tokens, result_ttl_s=args.result_ttl,
                          result_store_bytes=args.result_store_mb * 2**20, curve=args.curve,
                          trust_remote_code_models=args.trust_remote_code, max_input_tokens=args.max_input_tokens,
                          max_job_cost=args.max_job_cost, max_queued_per_user=args.max_queued,
                          job_time_limit_s=args.job_time_limit, max_batch_size=args.max_batch_size,
                          client_grace_s=args.client_grace,
                          max_message_bytes=int(args.max_message_mb * 2**20),
                          reply_journal_bytes=int(args.reply_journal_mb * 2**20),
                          reply_journal_ttl_s=args.reply_journal_ttl,
                          ray_address=args.ray, replicas=args.replicas, gpus_per_replica=args.gpus_per_replica,
                          cpus_per_replica=args.cpus_per_replica, ray_num_cpus=args.ray_num_cpus)
    daemon = Daemon(config)
    daemon.refuse_unsafe_bind()
    try:
        daemon.load_models()
        daemon.bind()
        daemon.serve()
    except OperationError as exc:  # a model that cannot load, replicas that refuse to start
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return 0


def status(args: argparse.Namespace, state_dir: Path) -> int:
    from ecco_protocol.one_shot import NoAnswer, request_once

    connection_file = args.connection_file or state_dir / "connection.json"
    try:
        info = read_connection_file(connection_file)
    except (OSError, ValueError) as exc:
        print(f"error: cannot read the connection file {connection_file} ({exc}); give --connection-file",
              file=sys.stderr)
        return 1
    if args.address:
        info.address = args.address
    try:
        state = request_once(info, "status", timeout_s=5.0)
    except NoAnswer as exc:
        print(f"error: {_status_failure(exc, connection_file)}", file=sys.stderr)
        return 1
    except ValueError as exc:  # a key that is no key at all (not hex), a malformed address
        print(f"error: {connection_file} cannot be used ({exc}); give --connection-file", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(state, indent=2, default=str))
        return 0
    daemon = state["daemon"]
    print(f"ecco-daemon {daemon['version']} (protocol {daemon['protocol']}) pid {daemon['pid']} "
          f"on {daemon['address']}, up {daemon['uptime_s']:.0f}s")
    for model in state["models"]:
        print(f"  model {model.get('name')}: {model.get('source')} on {model.get('device')} ({model.get('dtype')})")
    queue = state["queue"]
    print(f"  queue: {queue['length']} waiting, {len(queue['running'])} running")
    for place in state.get("executor", []):
        if place.get("kind") == "ray":
            print(f"  replica {place['name']}: {place['state']}, pid {place['pid']} on {place['node']} "
                  f"({place['device']}), {place['queue_length']} queued, {place['running']} running, "
                  f"{place['restarts']} restarts")
    return 0


def _status_failure(exc: Exception, connection_file: Path) -> str:
    """Why ``status`` got no state: a refused key is not a missing daemon."""
    code = getattr(exc, "code", None)
    if code == "UNAUTHORIZED":
        return (f"the daemon refused the key in {connection_file} ({exc}); use the connection file the "
                "daemon wrote for you (--connection-file)")
    if code:
        return f"the daemon answered {code}: {exc}"
    return f"no daemon answered: {exc}"


def daemon_endpoint(state_dir: Path) -> tuple[str, str | None]:
    """Address and CURVE public key of the daemon using this state folder, from its own connection file
    (rewritten at each start); before any start, the default address and no encryption."""
    own = connection_file_for(state_dir, ADMIN)
    if own.exists():
        info = read_connection_file(own)
        return info.address, info.server_public_key
    return DEFAULT_ADDRESS, None


def run_user_command(args: argparse.Namespace, state_dir: Path) -> int:
    users = UserStore(state_dir / "users.json")
    if args.user_command == "add":
        try:
            user = users.add(args.name, role=args.role)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        address, server_public_key = daemon_endpoint(state_dir)
        path = write_user_connection_file(state_dir, user, args.address or address, server_public_key)
        print(path)
        return 0
    if args.user_command == "list":
        for user in users.all():
            print(f"{user.name}\t{user.role}")
        return 0
    if args.user_command == "remove":
        if args.name == ADMIN:
            print("error: the admin user cannot be removed", file=sys.stderr)
            return 1
        if not users.remove(args.name):
            print(f"error: no user {args.name!r}", file=sys.stderr)
            return 1
        connection_file_for(state_dir, args.name).unlink(missing_ok=True)
        print(f"removed {args.name}")
        return 0
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
