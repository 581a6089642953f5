"""Versioned prompt templates: markdown files under `prompts/`, declared as stage deps.

A template file has sections introduced by `### <name>` lines (e.g. `### system`, `### user`);
text before the first section is a comment for people. Placeholders use `$name` / `${name}`
(string.Template), so JSON examples with braces need no escaping. Rendering with a missing
placeholder is an error naming the file and section.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from falsereject.core.io import InputError, read_text_strict

_SECTION = re.compile(r"^###\s+([A-Za-z_][\w-]*)\s*$", re.M)


@dataclass(frozen=True)
class PromptTemplate:
    path: str
    sections: dict[str, str]
    sha: str

    @property
    def tag(self) -> str:
        """`file@sha12`: recorded in provenance so a record names the exact prompt text."""
        return f"{Path(self.path).name}@{self.sha}"

    def render(self, section: str, **values: object) -> str:
        if section not in self.sections:
            raise InputError(f"{self.path}: no section '### {section}' "
                             f"(has: {', '.join(sorted(self.sections))})")
        try:
            return Template(self.sections[section]).substitute(
                {k: str(v) for k, v in values.items()}
            )
        except KeyError as err:
            raise InputError(f"{self.path}: section {section!r} uses ${err.args[0]} "
                             f"but no value was given") from None
        except ValueError as err:
            raise InputError(f"{self.path}: section {section!r}: {err}") from None


def load_template(path: str | Path, required: tuple[str, ...] = ()) -> PromptTemplate:
    text = read_text_strict(path)
    parts = _SECTION.split(text)
    sections = {parts[i].strip(): parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    missing = [s for s in required if s not in sections]
    if missing:
        raise InputError(f"{path}: missing section(s) {', '.join('### ' + s for s in missing)}")
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    return PromptTemplate(str(path), sections, sha)
