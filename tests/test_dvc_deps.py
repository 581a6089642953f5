"""dvc.yaml's deps are complete by construction, and the committed dvc.lock is not stale.

- Every module a stage script imports (its import closure inside `falsereject`) lies under one of
  that stage's deps, so editing library code can never leave a result from old code in place.
- Every file a stage reads through a configured path is a dep of that stage (`${...}` in
  dvc.yaml): editing the file makes `dvc status` report the stage changed.
- `dvc status` on this checkout shows no changed code, params or commands: the committed lock
  was made by the committed code (only missing outputs are allowed, as on a clean clone).
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from repo_copy import copy_repo, git_env

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
BIN = ROOT / ".venv" / "bin"


def _module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _imports(path: Path, package: str | None) -> set[str]:
    """Absolute `falsereject...` module names a file imports (relative imports resolved)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "falsereject"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if package is None:
                    continue
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(parts + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "falsereject":
                continue
            out.add(mod)
            # `from pkg import module` imports a module, not only a name
            out |= {f"{mod}.{a.name}" for a in node.names if _module_file(f"{mod}.{a.name}")}
    return out


def import_closure(script: Path) -> set[Path]:
    """Every file of the library the script loads, parents' `__init__` included."""
    seen: set[Path] = set()
    todo = [(script, None)]
    while todo:
        path, package = todo.pop()
        for name in _imports(path, package):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__, a/b/__init__
                f = _module_file(".".join(parts[:i]))
                if f and f not in seen:
                    seen.add(f)
                    pkg = ".".join(parts[:i]) if f.name == "__init__.py" else ".".join(parts[:i - 1])
                    todo.append((f, pkg))
    return seen


def _stage_defs() -> dict[str, dict]:
    """Raw stage definitions: foreach stages give their `do` block."""
    doc = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))
    return {name: (st["do"] if "foreach" in st else st) for name, st in doc["stages"].items()}


def _script(stage: dict) -> Path:
    m = re.search(r"python (stages/\w+\.py)", stage["cmd"])
    assert m, f"cannot find the stage script in {stage['cmd']!r}"
    return ROOT / m.group(1)


def test_the_closure_walker_sees_transitive_imports():
    closure = import_closure(ROOT / "stages" / "seeds.py")
    rel = {str(p.relative_to(SRC)) for p in closure}
    assert "falsereject/core/stage.py" in rel
    assert "falsereject/core/config.py" in rel  # imported by stage.py, not by the script
    assert "falsereject/__init__.py" in rel


@pytest.mark.parametrize("name", sorted(_stage_defs()))
def test_stage_deps_cover_its_import_closure(name):
    stage = _stage_defs()[name]
    deps = [d for d in stage.get("deps", []) if isinstance(d, str)]
    script = _script(stage)
    assert str(script.relative_to(ROOT)) in deps, f"{name}: its script is not a dep"
    dep_paths = [ROOT / d for d in deps if "${" not in d]
    uncovered = []
    for f in sorted(import_closure(script)):
        if f == SRC / "falsereject" / "__init__.py":
            continue  # docstring only, checked below
        if not any(f == d or d in f.parents for d in dep_paths):
            uncovered.append(str(f.relative_to(ROOT)))
    assert not uncovered, f"stage {name} imports modules no dep covers: {uncovered}"


def test_top_package_init_holds_no_code():
    """It is imported by every stage but is no stage's dep, so it must stay a docstring."""
    tree = ast.parse((SRC / "falsereject" / "__init__.py").read_text(encoding="utf-8"))
    body = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    assert not body


def test_stage_deps_are_folders_not_file_lists():
    """A stage lists package folders, never single library modules (those lists go stale)."""
    for name, stage in _stage_defs().items():
        files = [d for d in stage.get("deps", []) if isinstance(d, str)
                 and d.startswith("src/falsereject/") and d.endswith(".py")]
        assert not files, f"stage {name} lists library files: {files}"


# --- configured input files are deps -----------------------------------------------------------

def _sh(cmd: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _configured_deps(repo: Path) -> dict[str, list[str]]:
    """{resolved stage name: [configured file paths]} from dvc.yaml's `${...}` deps."""
    doc = yaml.safe_load((repo / "dvc.yaml").read_text(encoding="utf-8"))
    params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))

    def lookup(expr: str, item: dict | None):
        node: object = {"item": item} if expr.startswith("item.") else params
        for part in expr.split("."):
            node = node[part]  # type: ignore[index]
        return node

    out: dict[str, list[str]] = {}
    for name, st in doc["stages"].items():
        if "foreach" in st:
            items = lookup(st["foreach"].strip("${}"), None)
            for key, item in items.items():
                deps = [lookup(d[2:-1], item) for d in st["do"].get("deps", [])
                        if isinstance(d, str) and re.fullmatch(r"\$\{[\w.]+\}", d)]
                if deps:
                    out[f"{name}@{key}"] = deps
        else:
            deps = [lookup(d[2:-1], None) for d in st.get("deps", [])
                    if isinstance(d, str) and re.fullmatch(r"\$\{[\w.]+\}", d)]
            if deps:
                out[name] = deps
    return out


@pytest.mark.slow
def test_editing_a_configured_input_file_marks_its_stage_changed(tmp_path):
    repo = tmp_path / "repo"
    copy_repo(repo)
    env = git_env(tmp_path / "llmcache")
    configured = _configured_deps(repo)
    assert {"seeds", "generate", "calibrate"} <= set(configured), configured
    assert any(k.startswith("eval@") for k in configured)
    _sh(["git", "init", "-q"], repo, env)
    # Fake every missing output and dep so the stages can be locked without running them.
    paths = json.loads(_sh([str(BIN / "python"), "-c", _OUTS_SNIPPET], repo, env).stdout)
    for path, is_dir in paths:
        p = repo / path
        if p.exists():
            continue
        if is_dir:
            p.mkdir(parents=True, exist_ok=True)
            (p / "placeholder.txt").write_text("x\n")
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("{}\n")
    _sh([str(BIN / "dvc"), "commit", "-f", "-q"], repo, env)
    assert json.loads(_sh([str(BIN / "dvc"), "status", "--json"], repo, env).stdout) == {}
    edited = sorted({p for paths in configured.values() for p in paths})
    for rel in edited:
        target = repo / rel
        if target.is_dir():  # a configured folder: a new file in it changes its hash
            target = target / "added-by-test.txt"
        with target.open("a", encoding="utf-8") as fh:
            fh.write("\n")
    status = json.loads(_sh([str(BIN / "dvc"), "status", "--json"], repo, env).stdout)
    for stage, paths in configured.items():
        changed = [d for entry in status.get(stage, []) if isinstance(entry, dict)
                   for d in entry.get("changed deps", {})]
        for p in paths:
            assert p in changed, f"editing {p} does not mark {stage} changed: {status.get(stage)}"


_OUTS_SNIPPET = """
import json
from dvc.repo import Repo
repo = Repo('.')
paths = [str(o.def_path) for st in repo.index.stages for o in list(st.outs) + list(st.deps)
         if not str(o.def_path).startswith('params.yaml')]
print(json.dumps([(p, '.' not in p.rsplit('/', 1)[-1]) for p in paths]))
"""


# --- the committed lock matches the committed code ---------------------------------------------

def _is_data(dep: str, outputs: set[str]) -> bool:
    """An upstream stage's output, a file inside one, or a folder that holds outputs."""
    return any(dep == o or dep.startswith(o.rstrip("/") + "/") or o.startswith(dep.rstrip("/") + "/")
               for o in outputs)


def stale_entries(status: dict, outputs: set[str]) -> list[str]:
    """What in `dvc status --json` says the lock does not match code, params or commands."""
    bad = []
    for stage, entries in status.items():
        for entry in entries:
            if isinstance(entry, str):  # "changed command", "always changed", ...
                bad.append(f"{stage}: {entry}")
                continue
            for dep, state in entry.get("changed deps", {}).items():
                if dep.startswith("params.yaml"):
                    bad.append(f"{stage}: params {state}")
                elif _is_data(dep, outputs):
                    continue  # data, not code: missing on a clean clone
                else:
                    bad.append(f"{stage}: dep {dep} {state}")
    return bad


def test_stale_entry_filter_flags_code_and_params_but_not_missing_outputs():
    status = {"a": [{"changed deps": {"src/falsereject/core": "modified",
                                      "data/x.jsonl": "deleted", "data/d/f.jsonl": "deleted",
                                      "data": "modified"}},
                    {"changed outs": {"data/y.jsonl": "deleted"}}],
              "b": [{"changed deps": {"params.yaml": {"run": "modified"}}}],
              "c": ["changed command"]}
    bad = stale_entries(status, {"data/x.jsonl", "data/d"})
    assert bad == ["a: dep src/falsereject/core modified", "b: params {'run': 'modified'}",
                   "c: changed command"]


def test_committed_lock_matches_committed_code_and_params():
    env = git_env(ROOT / ".cache" / "llm")
    proc = subprocess.run([str(BIN / "dvc"), "status", "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout or "{}")
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text(encoding="utf-8"))
    outputs = {o["path"] for st in lock["stages"].values() for o in st.get("outs", [])}
    bad = stale_entries(status, outputs)
    assert not bad, ("dvc.lock is stale against the committed code/params; re-run the default "
                     f"pipeline (`make repro`) and commit dvc.lock: {bad}")


def _file_params(node, prefix=""):
    """(key, value) of every params value that names an existing file of the repository."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _file_params(v, f"{prefix}{k}.")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _file_params(v, f"{prefix}{i}.")
    elif isinstance(node, str) and "/" in node and (ROOT / node).is_file():
        yield prefix.rstrip("."), node


def test_every_configured_input_file_is_declared_as_a_dep():
    """A file named in params.yaml that no stage declares would be read without rerunning."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    declared = {p for paths in _configured_deps(ROOT).values() for p in paths}
    literal = {d.rstrip("/") for st in _stage_defs().values() for d in st.get("deps", [])
               if isinstance(d, str) and "${" not in d}

    def covered(path: str) -> bool:
        return path in declared or any(path == d or path.startswith(d + "/") for d in literal)

    undeclared = [f"{key}={path}" for key, path in _file_params(params) if not covered(path)]
    assert not undeclared, f"configured files that are no stage's dep: {undeclared}"
