"""The "ecco" settings the language server reads, with the same names and defaults as the VS Code
extension's package.json, from whichever channel an editor uses: ``workspace/configuration``, a
``workspace/didChangeConfiguration`` push (nvim-lspconfig), or ``initializationOptions`` (Helix's
``config``, flat; the VS Code extension's ``{"settings": ...}``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SECTION = "ecco"
DEFAULT_ADDRESS = "tcp://127.0.0.1:5555"
DEFAULT_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class Settings:
    daemon_address: str = DEFAULT_ADDRESS
    connection_file: str = ""
    user_key: str = ""
    model: str = DEFAULT_MODEL
    ssh_host: str = ""
    attribution_methods: tuple[str, ...] = ("grad_x_input",)
    probability_threshold: float = 0.01
    diagnostics_enabled: bool = True
    generate_tokens: int = 0
    contrastive_foil: str = ""  # a token: saliency answers "why this token rather than the foil"

    @property
    def connection(self) -> tuple[str, str, str, str]:
        """What decides where and how the server connects; a change means a new daemon connection."""
        return (self.daemon_address, self.connection_file, self.user_key, self.ssh_host)

    def describe_target(self) -> str:
        """Where the server connects, for messages (never the key)."""
        where = f"the daemon in {self.connection_file}" if self.connection_file else self.daemon_address
        return f"{where} through ssh {self.ssh_host}" if self.ssh_host else where


# The setting names an editor may send (``diagnostics`` nests ``enabled``); pythonPath is the extension's own.
KNOWN_NAMES = frozenset({
    "daemonAddress", "connectionFile", "userKey", "model", "sshHost", "attributionMethods", "probabilityThreshold",
    "diagnostics", "diagnosticsEnabled", "generateTokens", "contrastiveFoil", "pythonPath",
})


def settings_section(payload: Any) -> Mapping[str, Any] | None:
    """The "ecco" settings in whatever layout a client sent them, or None when it holds none:
    ``{"ecco": {...}}`` (a pushed section, as nvim-lspconfig and VS Code's synchronize send),
    ``{"settings": {...}}`` (the VS Code extension's initializationOptions), ``{"ecco.model": ...}``
    (dotted keys), or the settings themselves, flat (Helix's ``config``)."""
    if not isinstance(payload, Mapping):
        return None
    for wrapper in (SECTION, "settings"):
        found = settings_section(payload.get(wrapper)) if isinstance(payload.get(wrapper), Mapping) else None
        if found is not None:
            return found
    dotted = {key[len(SECTION) + 1:]: value for key, value in payload.items()
              if isinstance(key, str) and key.startswith(f"{SECTION}.")}
    if dotted:
        return dotted
    return payload if KNOWN_NAMES & set(payload) else None


@dataclass
class _Reader:
    """Reads loosely typed JSON values, keeping the default for anything missing or of the wrong type."""

    values: Mapping[str, Any]
    problems: list[str] = field(default_factory=list)

    def get(self, name: str, default: Any, kind: type | tuple[type, ...]) -> Any:
        value = self._lookup(name)
        if value is None:
            return default
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            self.problems.append(
                f"ecco.{name} should be {_kind_name(kind)}, not {value!r}; using {default!r}"
            )
            return default
        return value

    def _lookup(self, name: str) -> Any:
        """Accepts both the nested form VS Code sends ({"diagnostics": {"enabled": …}}) and a dotted key."""
        if name in self.values:
            return self.values[name]
        node: Any = self.values
        for part in name.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return node


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def parse_settings(values: Mapping[str, Any] | None) -> tuple[Settings, list[str]]:
    """Settings from the "ecco" section; also returns what was wrong with it, for the log."""
    read = _Reader(values if isinstance(values, Mapping) else {})
    base = Settings()
    methods = read.get("attributionMethods", list(base.attribution_methods), list)
    if not all(isinstance(m, str) for m in methods):
        read.problems.append("ecco.attributionMethods should list method names")
        methods = list(base.attribution_methods)
    threshold = read.get("probabilityThreshold", base.probability_threshold, float)
    if not 0.0 <= threshold <= 1.0:
        read.problems.append(
            f"ecco.probabilityThreshold {threshold} is outside 0..1; using {base.probability_threshold}"
        )
        threshold = base.probability_threshold
    generate = read.get("generateTokens", base.generate_tokens, int)
    if generate < 0:
        read.problems.append(f"ecco.generateTokens {generate} is negative; using 0")
        generate = 0
    diagnostics = read.get("diagnostics.enabled", None, bool)
    if diagnostics is None:  # the extension's initializationOptions spell it flat
        diagnostics = read.get("diagnosticsEnabled", base.diagnostics_enabled, bool)
    settings = Settings(
        daemon_address=read.get("daemonAddress", base.daemon_address, str) or base.daemon_address,
        connection_file=read.get("connectionFile", base.connection_file, str),
        user_key=read.get("userKey", base.user_key, str),
        model=read.get("model", base.model, str) or base.model,
        ssh_host=read.get("sshHost", base.ssh_host, str),
        attribution_methods=tuple(methods),
        probability_threshold=threshold,
        diagnostics_enabled=diagnostics,
        generate_tokens=generate,
        contrastive_foil=read.get("contrastiveFoil", base.contrastive_foil, str),
    )
    return settings, read.problems
