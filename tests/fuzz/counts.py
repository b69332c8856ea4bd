"""What a fuzzing run saw: messages sent, replies by code, and every problem with the message behind it.

Why apart from the target: the CI test and the benchmark read the same counts; a problem is a daemon death,
a hang, an INTERNAL reply, a request answered twice, or a reply that is unreadable or wrongly signed.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

from tests.fuzz.plans import Plan


@dataclass
class Counts:
    frames: int = 0  # messages sent (each one multipart message)
    batches: int = 0
    deaths: int = 0
    hangs: int = 0  # requests left unanswered, and pings unanswered by a live daemon
    internal: int = 0
    duplicates: int = 0  # requests answered more than once
    bad_replies: int = 0  # unreadable, or an authentic request's reply not signed with its sender's key
    codes: collections.Counter[str] = field(default_factory=collections.Counter)
    by_operation: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)  # signed requests
    failures: list[str] = field(default_factory=list)  # what each hang, death or INTERNAL answered

    def record(self, what: str, plan: Plan | None) -> None:
        if len(self.failures) < 50:
            self.failures.append(f"{what}: {plan.describe() if plan else 'a message whose id was unreadable'}")

    @property
    def clean(self) -> bool:
        return self.problems == 0

    def summary(self) -> str:
        return (f"frames sent {self.frames}, batches {self.batches}, daemon deaths {self.deaths}, "
                f"hangs {self.hangs}, INTERNAL replies {self.internal}, duplicate answers {self.duplicates}, "
                f"bad replies {self.bad_replies}")

    @property
    def problems(self) -> int:
        return self.deaths + self.hangs + self.internal + self.duplicates + self.bad_replies
