"""Turning a model spec string into what it names: an embedded alias, a folder, a GGUF file or a hub id."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ecco_daemon.models.embedded import EMBEDDED, EmbeddedModel
from ecco_daemon.models.errors import ModelLoadError

Kind = Literal["alias", "folder", "gguf", "hub"]

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class ModelSpec:
    """A resolved spec: its kind, and the alias entry, path or hub id it stands for."""

    kind: Kind
    text: str  # the spec as given
    path: Path | None = None  # folder or .gguf file, absolute
    embedded: EmbeddedModel | None = None

    @property
    def default_name(self) -> str:
        """The name a model gets when the caller gives none."""
        if self.embedded is not None:
            return self.embedded.alias
        if self.kind == "gguf" and self.path is not None:
            return self.path.stem
        if self.kind == "folder" and self.path is not None:
            return self.path.name
        return self.text

    @property
    def source(self) -> str:
        """Where the model comes from, as shown to users: the alias, the absolute path or the hub id."""
        return str(self.path) if self.path is not None else self.text


def _looks_like_path(text: str) -> bool:
    return (
        text.startswith(("/", "./", "../", "~", "\\"))
        or text.lower().endswith(".gguf")
        or text.count("/") > 1
        or (len(text) > 1 and text[1] == ":")  # a Windows drive
    )


def resolve_spec(spec: str) -> ModelSpec:
    """What ``spec`` names. Existing paths win over hub ids; an alias wins over both."""
    text = spec.strip()
    if not text:
        raise ModelLoadError(
            "empty model spec; give an alias (e.g. smollm2-135m), a folder, a .gguf file or a hub id"
        )
    embedded = EMBEDDED.get(text.lower())
    if embedded is not None:
        return ModelSpec("alias", text, embedded=embedded)
    path = Path(text).expanduser()
    if path.exists():
        return _resolve_path(text, path.resolve())
    if _looks_like_path(text):
        raise ModelLoadError(f"no such model file or folder: {text}")
    if not HUB_ID.match(text):
        raise ModelLoadError(
            f"{text!r} is neither a known alias ({', '.join(sorted(EMBEDDED))}), an existing path, "
            "nor a Hugging Face model id like 'org/name'"
        )
    return ModelSpec("hub", text)


def _resolve_path(text: str, path: Path) -> ModelSpec:
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            return ModelSpec("gguf", text, path=path)
        raise ModelLoadError(f"{path} is a file but not a .gguf; give a GGUF file or a model folder")
    if (path / "config.json").is_file():
        return ModelSpec("folder", text, path=path)
    ggufs = sorted(path.glob("*.gguf"))
    if len(ggufs) == 1:
        return ModelSpec("gguf", text, path=ggufs[0])
    if ggufs:
        names = ", ".join(g.name for g in ggufs)
        raise ModelLoadError(f"{path} holds several GGUF files ({names}); name the one to load")
    raise ModelLoadError(f"{path} is a folder without config.json or a .gguf file; it holds no model")
