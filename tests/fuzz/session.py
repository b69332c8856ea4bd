"""A fuzzing session: a daemon on tiny models, a plain user to fuzz with, and hypothesis drawing the batches.

Why these limits: a fuzzed request that is valid must stay cheap (few tokens, little attribution work, a
short time limit), so that a batch is answered in seconds and a slow answer means a hang, not hard work.
The hub is switched off: a random model name must fail at once, not wait on the network.
"""

from __future__ import annotations

from pathlib import Path

from ecco_protocol.connection_file import read_connection_file
from hypothesis import HealthCheck, Phase, given, settings

from tests.daemon_process import DaemonProcess
from tests.fuzz.counts import Counts
from tests.fuzz.plans import batches
from tests.fuzz.target import Target
from tests.service.multiuser_support import add_user

FUZZ_ARGS = ["--max-input-tokens", "64", "--max-new-tokens", "24", "--max-job-cost", "4000",
             "--job-time-limit", "10", "--result-store-mb", "64", "--max-queued", "64"]
FUZZ_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
SEEDS = [  # analyses whose results the views are fuzzed on
    ("analyze", {"text": "The capital of France is Paris.", "attribution": ["grad_x_input", "ig"], "steps": 4}),
    ("analyze", {"text": "The cat sat on the mat.", "rankings": False}),
    ("generate", {"prompt": "The cat", "generate": 4, "attribution": ["gradient"]}),
]


def fuzz_daemon(workdir: Path, models: list[Path]) -> DaemonProcess:
    return DaemonProcess(workdir, [str(m) for m in models], extra_args=FUZZ_ARGS, env=FUZZ_ENV)


class FuzzSession:
    """Batches sent to a running daemon, each followed by a ping; a daemon that died is counted and restarted."""

    def __init__(self, daemon: DaemonProcess) -> None:
        self.daemon = daemon
        self.user_file = add_user(daemon.state_dir, "fuzzer")
        self.target = Target(read_connection_file(self.user_file), daemon.info, [])
        listed = self.target.call("models.list", {})
        assert listed is not None and listed[0] == "result", listed
        self.target.models = [m["name"] for m in listed[1]["models"]]
        for op, params in SEEDS:
            self.target.call(op, params)

    @property
    def counts(self) -> Counts:
        return self.target.counts

    def check(self) -> None:
        """After a batch: the daemon answers a ping; if it died, it is counted and started again."""
        if self.daemon.process is not None and self.daemon.process.poll() is None and self.target.ping():
            return
        if self.daemon.process is not None and self.daemon.process.poll() is not None:
            self.counts.deaths += 1
            self.counts.record(f"daemon died with {self.daemon.process.returncode}", None)
            self.daemon.start()
            self.target.reconnect(read_connection_file(self.user_file), self.daemon.info)
        else:
            self.counts.hangs += 1
            self.counts.record("no answer to a ping after the batch", None)

    def run(self, examples: int, batch_size: int = 20, strict: bool = True, seed: int | None = None,
            min_batch: int = 1) -> Counts:
        """``examples`` batches; ``strict``: the first batch with a problem fails (and hypothesis shrinks it)."""

        @settings(max_examples=examples, deadline=None, database=None, derandomize=seed is not None,
                  suppress_health_check=list(HealthCheck),
                  phases=[Phase.generate, Phase.shrink] if strict else [Phase.generate])
        @given(batch=batches(min_batch, batch_size))
        def one_batch(batch) -> None:
            before = self.counts.problems
            self.target.run_batch(batch)
            self.check()
            if strict and self.counts.problems > before:
                raise AssertionError("\n".join(self.counts.failures[-10:]))

        one_batch()
        return self.counts
