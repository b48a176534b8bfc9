"""Recipe schema and loading.

A recipe is data (YAML): top-level settings plus an ordered list of steps, each with a ``type`` that selects a
registered :class:`~medsynth.recipe.step.Step` and its closed pydantic config. :func:`load_recipe` validates the
whole recipe and reports *every* problem at once (field path + what to do), before any model is loaded.
``--set a.b=value`` overrides are applied to the raw data first; steps can be addressed by index
(``steps.2.n``) or by name/type (``steps.generate.n``).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..exceptions import RecipeError
from ..paths import check_name
from ..registry import STEPS
from .step import Step

__all__ = ["RecipeConfig", "PrivacySettings", "LoadedRecipe", "load_recipe", "parse_overrides", "apply_overrides"]


class PrivacySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy: str = Field("privacy/policy.yaml", description="policy file with audit thresholds (relative to the recipe's project root or cwd)")
    budget: str | None = Field(None, description="name of the privacy budget DP steps debit (see `medsynth budget`)")


class RecipeConfig(BaseModel):
    """Top-level recipe fields (the steps are validated separately, by their registered type)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    seed: int = 0
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    steps: list[dict[str, Any]] = Field(min_length=1)


@dataclass
class LoadedRecipe:
    config: RecipeConfig
    steps: list[Step]
    raw: dict[str, Any]
    path: Path | None
    base_dir: Path
    names: list[str] = field(default_factory=list)

    def wiring(self) -> list[tuple[list[str], list[str]]]:
        """For each step: the datasets it reads (default: the previous step's main output) and the datasets it
        writes (main output first, then ``Step.extra_outputs()``)."""
        out: list[tuple[list[str], list[str]]] = []
        prev: str | None = None
        for st, name in zip(self.steps, self.names, strict=True):
            ins = st.config.input
            ins_list = [ins] if isinstance(ins, str) else list(ins or ([] if prev is None else [prev]))
            outs = [st.config.output or name, *st.extra_outputs()]
            out.append((ins_list, outs))
            prev = outs[0]
        return out

    def resolve_path(self, p: str | os.PathLike[str]) -> Path:
        """Resolve a path written in the recipe: absolute, else relative to cwd if it exists there, else to the
        recipe's project root (the folder holding ``recipes/``)."""
        p = Path(os.path.expandvars(os.path.expanduser(str(p))))
        if p.is_absolute():
            return p
        if (Path.cwd() / p).exists():
            return Path.cwd() / p
        return self.base_dir / p


_FIXES = {
    "extra_forbidden": "unknown key: remove it or fix its spelling",
    "missing": "required: add it",
    "int_parsing": "expected an integer",
    "int_type": "expected an integer",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "bool_parsing": "expected true or false",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "literal_error": "not one of the allowed values",
    "greater_than": "too small",
    "greater_than_equal": "too small",
    "less_than": "too large",
    "less_than_equal": "too large",
    "string_pattern_mismatch": "use only letters, digits, '_', '-', '.'",
    "too_short": "must not be empty",
}


def _pydantic_problems(err: ValidationError, prefix: str, model: type[BaseModel] | None = None) -> list[tuple[str, str]]:
    out = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"])
        where = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
        fix = _FIXES.get(e["type"], "")
        msg = e["msg"]
        if e["type"] == "extra_forbidden" and model is not None:
            allowed = sorted(model.model_fields)
            close = difflib.get_close_matches(str(e["loc"][-1]), allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            msg = f"unknown key{hint}; allowed keys: {', '.join(allowed)}"
        elif fix and fix not in msg:
            msg = f"{msg} — {fix}"
        if "input" in e and e["type"] not in ("missing", "extra_forbidden") and (isinstance(e["input"], (int, float, bool)) or (isinstance(e["input"], str) and len(e["input"]) <= 80)):
            msg += f" (got {e['input']!r})"
        out.append((where, msg))
    return out


def parse_overrides(items: list[str] | None) -> list[tuple[str, Any]]:
    """Parse ``key.path=value`` strings; values are YAML scalars/lists (``3``, ``true``, ``[a, b]``)."""
    out, problems = _parse_overrides(items)
    if problems:
        raise RecipeError("Invalid --set override(s):", problems)
    return out


def _parse_overrides(items: list[str] | None) -> tuple[list[tuple[str, Any]], list[tuple[str, str]]]:
    """The parsed overrides and the problems of those that do not parse (every one, not just the first)."""
    out: list[tuple[str, Any]] = []
    problems: list[tuple[str, str]] = []
    for item in items or []:
        if "=" not in item:
            problems.append((f"--set {item}", "expected key.path=value, e.g. --set steps.generate.n=200"))
            continue
        key, value = item.split("=", 1)
        try:
            out.append((key.strip(), yaml.safe_load(value)))
        except yaml.YAMLError:
            problems.append((f"--set {key}", "the value is not valid YAML; quote it"))
        else:
            if not key.strip() or any(not part for part in key.strip().split(".")):
                out.pop()
                problems.append((f"--set {item.split('=', 1)[0]}", "the key is empty or has an empty part; write key.path=value"))
    return out, problems


def _step_index(steps: list[Any], token: str) -> int | None:
    if token.isdigit():
        i = int(token)
        return i if i < len(steps) else None
    matches = [i for i, s in enumerate(steps) if isinstance(s, dict) and (s.get("name") == token)]
    if not matches:
        matches = [i for i, s in enumerate(steps) if isinstance(s, dict) and s.get("type") == token]
    return matches[0] if len(matches) == 1 else None


def apply_overrides(raw: dict[str, Any], overrides: list[tuple[str, Any]]) -> list[tuple[str, str]]:
    """Apply overrides in place; return problems (unresolvable paths)."""
    problems = []
    for key, value in overrides:
        parts = key.split(".")
        node: Any = raw
        ok = True
        for j, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                idx = _step_index(node, part) if parts[j - 1 : j] == ["steps"] or j > 0 else None
                if idx is None and part.isdigit() and int(part) < len(node):
                    idx = int(part)
                if idx is None:
                    problems.append((f"--set {key}", f"no single step named '{part}'; use its index (0-{len(node) - 1}) or give the step a unique `name:`"))
                    ok = False
                    break
                node = node[idx]
            elif isinstance(node, dict):
                if part not in node or node[part] is None:
                    node[part] = {}
                node = node[part]
            else:
                problems.append((f"--set {key}", f"'{'.'.join(parts[: j + 1])}' is not a mapping"))
                ok = False
                break
        if not ok:
            continue
        last = parts[-1]
        if isinstance(node, list):
            if last.isdigit() and int(last) < len(node):
                node[int(last)] = value
            else:
                problems.append((f"--set {key}", "list index out of range"))
        elif isinstance(node, dict):
            node[last] = value
        else:
            problems.append((f"--set {key}", "cannot set a key inside a scalar"))
    return problems


def _base_dir_for(path: Path | None) -> Path:
    if path is None:
        return Path.cwd()
    p = path.resolve().parent
    # recipes live in <project>/recipes/; paths in them are relative to the project root
    return p.parent if p.name == "recipes" else p


def _privacy_or_default(raw: Any) -> PrivacySettings:
    try:
        return PrivacySettings.model_validate(raw or {})
    except ValidationError:
        return PrivacySettings()


def load_recipe(source: str | os.PathLike[str] | dict[str, Any], overrides: list[str] | None = None, check_resources: bool = True) -> LoadedRecipe:
    """Load and validate a recipe; raise :class:`RecipeError` listing every problem at once."""
    path: Path | None = None
    if isinstance(source, dict):
        import copy

        raw = copy.deepcopy(source)
    else:
        path = Path(source)
        if not path.exists():
            raise RecipeError(f"Recipe file not found: {path}. Check the path; the shipped recipes are in recipes/ (e.g. recipes/quickstart.yaml).")
        if not path.is_file():
            raise RecipeError(f"{path}: is a directory, not a recipe file. Give the path of a YAML recipe (e.g. recipes/quickstart.yaml).")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise RecipeError(f"{path}: not valid YAML{where}. Fix the syntax (indentation, colons, quotes).") from None
        except UnicodeDecodeError:
            raise RecipeError(f"{path}: not UTF-8 text. Save the recipe as UTF-8.") from None
        except OSError as e:
            raise RecipeError(f"{path}: cannot be read ({e.strerror or type(e).__name__}). Check the path and its permissions.") from None
    if not isinstance(raw, dict):
        raise RecipeError(f"{path or 'recipe'}: the top level must be a mapping with `name`, `seed` and `steps`.")

    parsed, problems = _parse_overrides(overrides)
    problems += apply_overrides(raw, parsed)

    cfg: RecipeConfig | None = None
    try:
        cfg = RecipeConfig.model_validate(raw)
    except ValidationError as e:
        problems += _pydantic_problems(e, "", RecipeConfig)

    base_dir = _base_dir_for(path)
    steps: list[Step] = []
    names: list[str] = []
    raw_steps = raw.get("steps") if isinstance(raw.get("steps"), list) else []
    known = STEPS.names()
    seen: dict[str, int] = {}
    # per raw step: (index, validated step or None, the datasets it reads, the datasets it writes). Invalid steps
    # keep a best guess of their wiring so that the steps after them are still checked without false alarms.
    entries: list[tuple[int, Step | None, list[str], list[str]]] = []
    prev: str | None = None
    for i, s in enumerate(raw_steps):
        if not isinstance(s, dict):
            problems.append((f"steps.{i}", "each step must be a mapping with a `type:` key"))
            continue
        guess_out = s.get("output") or s.get("name") or s.get("type")
        guess_in = s.get("input")
        guess_ins = [guess_in] if isinstance(guess_in, str) else [x for x in guess_in if isinstance(x, str)] if isinstance(guess_in, list) else ([] if prev is None else [prev])
        stype = s.get("type")
        st: Step | None = None
        if not stype:
            problems.append((f"steps.{i}.type", f"missing: every step needs a `type:`; one of {', '.join(known)}"))
        elif not isinstance(stype, str) or stype not in STEPS:
            close = difflib.get_close_matches(str(stype), known, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            problems.append((f"steps.{i}.type", f"unknown step type '{stype}'.{hint} Known: {', '.join(known)} (see `medsynth list`)"))
        else:
            cls = STEPS.get(stype)
            label = f"steps.{i}({stype})"
            try:
                scfg = cls.Config.model_validate(s)
            except ValidationError as e:
                problems += _pydantic_problems(e, label, cls.Config)
            else:
                name = scfg.name or stype
                if scfg.name is None and stype in seen:
                    seen[stype] += 1
                    name = f"{stype}_{seen[stype]}"
                else:
                    seen.setdefault(stype, 1)
                if name in names:
                    problems.append((f"{label}.name", f"duplicate step name '{name}'; give each step a unique `name:`"))
                names.append(name)
                st = cls(scfg, None)
                steps.append(st)
        if st is not None:
            ins = st.config.input
            ins_list = [ins] if isinstance(ins, str) else list(ins or ([] if prev is None else [prev]))
            outs = [st.config.output or names[-1], *st.extra_outputs()]
        else:
            ins_list, outs = guess_ins, [str(guess_out)] if guess_out else []
        entries.append((i, st, ins_list, outs))
        prev = outs[0] if outs else prev

    privacy = cfg.privacy if cfg is not None else _privacy_or_default(raw.get("privacy"))
    config = cfg if cfg is not None else RecipeConfig.model_construct(name=str(raw.get("name") or "recipe"), description="", seed=0,
                                                                       privacy=privacy, steps=raw_steps)
    loaded = LoadedRecipe(config=config, steps=steps, raw=raw, path=path, base_dir=base_dir, names=names)
    # dataset wiring: every input must be produced by an earlier step (checked even when other fields are invalid)
    produced: set[str] = set()
    for i, st, ins_list, outs in entries:
        stype = st.config.type if st is not None else raw_steps[i].get("type")
        if st is not None:
            st.recipe = loaded
            for o in outs[1:]:
                try:
                    check_name(o, "a dataset name")
                except ValueError as e:
                    problems.append((f"steps.{i}({stype})", f"extra output '{o}': {e}"))
        for d in ins_list:
            if d not in produced:
                problems.append((f"steps.{i}({stype}).input", f"dataset '{d}' is not produced by an earlier step; produced so far: {', '.join(sorted(produced)) or '(none)'}"))
        produced.update(outs)
    if check_resources:
        for i, st, _, _ in entries:
            if st is not None:
                for loc, msg in st.check(loaded):
                    problems.append((f"steps.{i}({st.config.type}).{loc}", msg))
    if problems:
        raise RecipeError(f"{path or 'recipe'}: {len(problems)} problem(s) found; nothing was run.", problems)
    return loaded
