"""Versioned prompt templates: YAML files under `prompts/`, declared as stage deps.

One format and one loader for every prompt of the project (extraction, generation agents,
responder, judge):

- A template file is a YAML mapping. Its string values are prompt texts, addressed by dotted
  keys (`system`, `user`, `revise.pool`, `per_part.answer.caution`); `null` means "no text" (for
  a system prompt: the model's own chat-template default). Other values (heading words, a
  `version`) are data the caller reads with `PromptTemplate.value`. Comments (`#`) are for
  people.
- Texts are used exactly as YAML gives them: write them as `|-` blocks (literal, no final line
  break) or `|` (literal, the final line break is part of the prompt).
- Placeholders use `$name` / `${name}` (string.Template), so JSON examples with braces need no
  escaping; `$$` is a literal `$`.

Loading checks that every text is a valid template, that the required keys exist and that the
declared placeholders are used; rendering with a missing value is an error naming the file and
key. `tag` (`file@sha12`) goes into provenance so a record names the exact prompt text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import yaml

from falsereject.core.io import InputError, read_text_strict

_MISSING = object()


@dataclass(frozen=True)
class PromptTemplate:
    path: str
    data: dict[str, Any]
    source: str  # the file's text

    @property
    def sha256(self) -> str:
        """The digest of the file's text (identities that hash the prompt use it)."""
        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()

    @property
    def sha(self) -> str:
        return self.sha256[:12]

    @property
    def tag(self) -> str:
        """`file@sha12`: recorded in provenance so a record names the exact prompt text."""
        return f"{Path(self.path).name}@{self.sha}"

    def value(self, key: str, default: Any = _MISSING) -> Any:
        """The raw value at a dotted key; when it is missing, `default` or an error."""
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is not _MISSING:
                    return default
                raise InputError(f"{self.path}: no key {key!r}")
            node = node[part]
        return node

    def text(self, key: str, *, optional: bool = False) -> str | None:
        """The unrendered text at `key`; None where the file says `null` (or, when `optional`,
        where the key is missing)."""
        value = self.value(key, None) if optional else self.value(key)
        if value is not None and not isinstance(value, str):
            raise InputError(f"{self.path}: {key!r} must be a text or null")
        return value

    def placeholders(self, key: str) -> set[str]:
        text = self.text(key, optional=True)
        return set(Template(text).get_identifiers()) if text is not None else set()

    def render(self, key: str, **values: object) -> str:
        """The text at `key` with its placeholders filled; `$$` gives `$`."""
        text = self.text(key)
        if text is None:
            raise InputError(f"{self.path}: {key!r} is null: no text to render")
        try:
            return Template(text).substitute({k: str(v) for k, v in values.items()})
        except KeyError as err:
            raise InputError(f"{self.path}: {key!r} uses ${err.args[0]} "
                             "but no value was given") from None

    def render_optional(self, key: str, **values: object) -> str | None:
        """`render`, or None where the text is null or missing."""
        if self.text(key, optional=True) is None:
            return None
        return self.render(key, **values)


def _texts(node: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _texts(v, f"{prefix}{k}.")
    elif isinstance(node, str):
        yield prefix[:-1], node


def parse_template(text: str, path: str | Path = "<text>", required: Collection[str] = (),
                   placeholders: Mapping[str, Collection[str]] | None = None) -> PromptTemplate:
    """A template from its file's text. `required`: keys that must exist (a text or null);
    `placeholders`: for a key, the names its text must use, and the only ones it may use."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise InputError(f"{path}: malformed YAML ({err})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a prompt template is a YAML mapping of texts")
    for key, value in _texts(data):
        if not Template(value).is_valid():
            raise InputError(f"{path}: {key!r}: a `$` that starts no placeholder "
                             "(write `$$` for a literal dollar sign)")
    t = PromptTemplate(str(path), data, text)
    absent = object()
    missing = [k for k in required if t.value(k, absent) is absent]
    if missing:
        raise InputError(f"{path}: missing key(s) {', '.join(repr(k) for k in missing)}")
    for key, names in (placeholders or {}).items():
        used, want = t.placeholders(key), set(names)
        if used != want:
            lacking, extra = sorted(want - used), sorted(used - want)
            what = ([f"never uses {', '.join('$' + n for n in lacking)}"] if lacking else []) + \
                   ([f"uses unknown {', '.join('$' + n for n in extra)}"] if extra else [])
            raise InputError(f"{path}: {key!r} {' and '.join(what)} "
                             f"(placeholders: {', '.join('$' + n for n in sorted(want))})")
    return t


def load_template(path: str | Path, required: Collection[str] = (),
                  placeholders: Mapping[str, Collection[str]] | None = None) -> PromptTemplate:
    """Read and check a prompt template file (see `parse_template`)."""
    return parse_template(read_text_strict(path), path, required, placeholders)
