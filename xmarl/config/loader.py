"""Config loading: ``defaults.yaml < configs/<method>/<env>.yaml < user YAML < overrides``.

Every value remembers where it came from (file and line, or "override"), so that a
validation error names the field, the file and the line, and an unknown key names the
closest valid key.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from xmarl import registry
from xmarl.config.schema import RunBase, run_model
from xmarl.errors import ConfigError, choices, did_you_mean, one_line
from xmarl.files import atomic_write_text, configs_dir

Path_ = tuple[str, ...]


class _PlainLoader(yaml.SafeLoader):
    """YAML as plain data: mappings with unique scalar keys, lists, numbers, strings, booleans
    and null (no tags beyond YAML's own, no duplicate keys)."""


class _DuplicateKey(yaml.constructor.ConstructorError):
    pass


def _plain_mapping(loader: _PlainLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    first: dict[Any, int] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise yaml.constructor.ConstructorError(None, None, "a key must be a name, not a list or mapping",
                                                    key_node.start_mark)
        if key in first:
            raise _DuplicateKey(None, None, f"key '{key}' appears twice (first at line {first[key]}); keep one",
                                key_node.start_mark)
        first[key] = key_node.start_mark.line + 1
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


_PlainLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _plain_mapping)

PLAIN_DATA = "a config holds plain data only (mappings, lists, numbers, strings, true/false, null)"


def _compose(text: str, source: str) -> tuple[Any, dict[Path_, str]]:
    """Parse YAML; return the data and ``{key path: 'file:line'}``."""
    try:
        node = yaml.compose(text, Loader=_PlainLoader)
        data = yaml.load(text, Loader=_PlainLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = one_line(getattr(exc, "problem", None) or str(exc).splitlines()[0])
        if isinstance(exc, _DuplicateKey):
            raise ConfigError(f"YAML at {where}: {problem}") from None
        if isinstance(exc, yaml.constructor.ConstructorError):
            raise ConfigError(f"YAML at {where}: {problem}; {PLAIN_DATA}") from None
        raise ConfigError(f"malformed YAML at {where}: {problem}; fix the syntax there") from None
    except RecursionError:
        raise ConfigError(f"{source}: the YAML nests too deeply; {PLAIN_DATA}") from None
    lines: dict[Path_, str] = {}

    def walk(n: yaml.Node, path: Path_) -> None:
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                p = path + (str(k.value),)
                lines[p] = f"{source}:{k.start_mark.line + 1}"
                walk(v, p)

    if node is not None:
        walk(node, ())
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a config must be a YAML mapping of keys to values, got {type(data).__name__}")
    return data, lines


def _load_file(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[Path_, str]]:
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"config file '{p}' is a folder; pass a YAML file")
    if not p.is_file():
        raise ConfigError(f"config file '{p}' does not exist; check the path")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config file '{p}' is not UTF-8 text; pass a YAML file") from None
    except OSError as exc:
        raise ConfigError(f"config file '{p}' cannot be read ({exc.strerror or exc}); check its permissions") from None
    return _compose(text, str(p))


def _merge(base: dict, new: dict, where: dict[Path_, str], source: dict[Path_, str] | str,
           path: Path_ = ()) -> None:
    """Merge ``new`` into ``base`` key by key; ``source`` gives the new layer's lines
    (``{path: 'file:line'}``) or one label for all of its keys (``"override"``). A section
    (a mapping in the layers below) takes only a mapping."""
    for k, v in new.items():
        p = path + (str(k),)
        if isinstance(base.get(k), dict) and not isinstance(v, dict):
            at = source if isinstance(source, str) else source.get(p, "the config")
            keys = ", ".join(list(base[k])[:3]) + (", ..." if len(base[k]) > 3 else "")
            what = f"a section ({keys})" if base[k] else "a mapping"
            example = f", e.g. {'.'.join(p)}.{next(iter(base[k]))}" if base[k] else ""
            raise ConfigError(f"config key '{'.'.join(p)}' at {at} is {what}, got {v!r}; "
                              f"set the keys inside it{example}")
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v, where, source, p)
            continue
        base[k] = copy.deepcopy(v)
        for q in [q for q in where if q[: len(p)] == p]:
            del where[q]
        if isinstance(source, str):
            _mark(v, p, where, source)
        else:
            where.update({q: line for q, line in source.items() if q[: len(p)] == p})


def _mark(v: Any, p: Path_, where: dict[Path_, str], source: str) -> None:
    where[p] = source
    if isinstance(v, dict):
        for k, sub in v.items():
            _mark(sub, p + (str(k),), where, source)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a.b": 1, "c": "x"}`` (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set '{item}' is not of the form key.path=value, e.g. --set train.steps=5000")
        key, _, val = item.partition("=")
        try:
            out[key.strip()] = yaml.load(val, Loader=_PlainLoader) if val.strip() else ""  # noqa: S506
        except yaml.YAMLError:
            out[key.strip()] = val
    return out


def _nest(overrides: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, val in overrides.items():
        parts = str(key).split(".")
        if not all(parts):
            raise ConfigError(f"override key '{key}' has an empty part; write it as section.key, e.g. train.steps")
        d = nested
        for part in parts[:-1]:
            d = d.setdefault(part, {})
            if not isinstance(d, dict):
                raise ConfigError(f"override '{key}' sets a key below '{part}', which is not a section")
        d[parts[-1]] = val
    return nested


def env_config_path(method: str, env: str) -> Path:
    """``configs/<method>/<env>.yaml`` (env names may contain '/', e.g. mpe/simple_spread_v3). An
    env with a transition-identical twin (``mpe-fast/<task>`` and ``mpe/<task>``) and no file of
    its own reads its twin's."""
    from xmarl.envs import config_twin

    path = configs_dir() / method / f"{env}.yaml"
    twin = config_twin(env)
    if not path.is_file() and twin is not None:
        return configs_dir() / method / f"{twin}.yaml"
    return path


def default_config() -> tuple[dict[str, Any], dict[Path_, str]]:
    """Every key's default: configs/defaults.yaml, and the own section of each registered method
    it lacks (a plugin's), with where each value comes from."""
    from xmarl.core.methods import method_specs

    merged, where = _load_file(configs_dir() / "defaults.yaml")
    for name, spec in method_specs().items():
        if name not in merged and spec.defaults:
            merged[name] = copy.deepcopy(spec.defaults)
            _mark(merged[name], (name,), where, f"plugin '{name}' defaults")
    return merged, where


def load_config(
    method: str | None = None,
    env: str | None = None,
    backend: str | None = None,
    config: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> BaseModel:
    """Merge and validate a run's config; see the module docstring for the order."""
    from xmarl.core.methods import method_specs

    merged, where = default_config()
    user: dict[str, Any] = {}
    user_where: dict[Path_, str] = {}
    if config is not None:
        user, user_where = _load_file(config)
    top = {k: v for k, v in {"method": method, "env": env, "backend": backend}.items() if v is not None}
    method = top.get("method", user.get("method", merged.get("method")))
    env = top.get("env", user.get("env", merged.get("env")))

    specs = method_specs()
    if method not in specs:
        valid = sorted(specs)
        raise ConfigError(f"unknown method '{method}'{did_you_mean(method, valid)}{choices(str(method), valid)}")
    if env is not None:
        registry.get("env", str(env))  # unknown env -> list of valid ones
        pair = env_config_path(str(method), str(env))
        if pair.is_file():
            data, lines = _load_file(pair)
            _merge(merged, data, where, lines)
    if config is not None:
        _merge(merged, user, where, user_where)
    if top:
        _merge(merged, top, where, "argument")
    if overrides:
        _merge(merged, _nest(overrides), where, "override")

    model = run_model({n: s.config_model for n, s in specs.items()}, str(method))
    try:
        cfg = model.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, merged, where)) from None
    if cfg.backend not in registry.backends():
        valid = registry.backends()
        hint = did_you_mean(cfg.backend, valid)
        raise ConfigError(f"unknown backend '{cfg.backend}'{hint}{choices(cfg.backend, valid)}")
    _check_together(cfg, where)
    return cfg


def _check_together(cfg: BaseModel, where: dict[Path_, str]) -> None:
    """Values valid alone that contradict each other, and paths of the wrong kind: refused with
    both keys (and where each was set) named."""

    def at(key: str) -> str:
        return where.get(tuple(key.split(".")), "the defaults")

    section = getattr(cfg, cfg.method)
    pairs = list(section.contradictions(cfg.method, cfg))
    sections = {g: group_section(cfg, g) for g in cfg.groups}  # a bad group method or config fails here
    fixed = [g for g, c in cfg.groups.items() if c.policy != "learn"]
    if fixed and not separate_learners(cfg) and getattr(section, "share_parameters", False):
        pairs.append((f"groups.{fixed[0]}.policy", f"{cfg.method}.share_parameters",
                      f"a '{cfg.groups[fixed[0]].policy}' group needs per-agent weights while one learner trains "
                      f"every agent; set {cfg.method}.share_parameters: false"))
    for g, c in cfg.groups.items():
        method, sec = sections[g]
        if c.config:
            pairs.extend((f"groups.{g}.config.{a.split('.', 1)[1]}", f"groups.{g}.config.{b.split('.', 1)[1]}", why)
                         for a, b, why in sec.contradictions(method, cfg))
        if (c.policy == "frozen") != (c.checkpoint is not None):
            pairs.append((f"groups.{g}.policy", f"groups.{g}.checkpoint",
                          "a 'frozen' group acts with the weights of a checkpoint: give both, or neither"))
        if c.policy == "frozen" and getattr(sec, "recurrent", False):
            pairs.append((f"groups.{g}.policy", f"{method}.recurrent",
                          "a frozen group acts with a feed-forward policy; set recurrent: false"))
    for a, b, why in pairs:
        raise ConfigError(f"config keys '{a}' ({at(a)}) and '{b}' ({at(b)}) contradict each other: {why}")
    name = cfg.name
    if name is not None and (not name.strip() or name in (".", "..") or any(c in name for c in "/\\\0")):
        raise ConfigError(f"config key 'name' ({at('name')}) is {name!r}; give a folder name without '/' or '..'")
    out = Path(cfg.out_dir)
    for parent in (out, *out.parents):
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"config key 'out_dir' ({at('out_dir')}): '{parent}' is a file, not a folder; "
                                  "pass a folder (it is created if missing)")
            break


def group_section(cfg: BaseModel, group: str) -> tuple[str, BaseModel]:
    """The method group ``group`` learns (or acts) with, and its config: that method's section of
    the run with the group's ``config`` keys applied. A one-line :class:`ConfigError` for an
    unknown method or key, or a value of the wrong type."""
    from xmarl.core.methods import method_specs

    g = cfg.groups[group]
    method = g.method or cfg.method
    specs = method_specs()
    if method not in specs:
        valid = sorted(specs)
        raise ConfigError(f"config key 'groups.{group}.method': unknown method '{method}'"
                          f"{did_you_mean(method, valid)}{choices(method, valid)}")
    section = getattr(cfg, method, None)
    if section is None:
        raise ConfigError(f"config key 'groups.{group}.method' is '{method}', but the config has no '{method}' "
                          f"section; add one (see `xmarl list`)")
    if not g.config:
        return method, section
    try:
        return method, type(section).model_validate({**section.model_dump(), **g.config})
    except ValidationError as exc:
        err = exc.errors()[0]
        key = f"groups.{group}.config." + ".".join(str(x) for x in err["loc"])
        if err["type"] == "extra_forbidden":
            hint = did_you_mean(str(err["loc"][-1]), list(type(section).model_fields), cutoff=0.4,
                                prefix=f"groups.{group}.config.")
            raise ConfigError(f"unknown config key '{key}' (not a key of the '{method}' section){hint}") from None
        raise ConfigError(f"config key '{key}': {err['msg'][0].lower()}{err['msg'][1:]}, got "
                          f"{err.get('input')!r}") from None


def separate_learners(cfg: BaseModel) -> bool:
    """Whether some learning group has a method or config of its own: then each learning group
    trains its own learner over its agents; else one learner trains every agent."""
    return any(g.policy == "learn" and ((g.method or cfg.method) != cfg.method or g.config)
               for g in cfg.groups.values())


def _explain(exc: ValidationError, merged: dict[str, Any], where: dict[Path_, str]) -> str:
    err = exc.errors()[0]
    loc = tuple(str(x) for x in err["loc"])
    # pydantic adds union/literal branch names to loc; keep the part that exists in the data
    path: list[str] = []
    node: Any = merged
    for part in loc:
        if isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and part.isdigit():
            path.append(part)
            node = node[int(part)] if int(part) < len(node) else None
        else:
            if err["type"] in ("extra_forbidden", "missing"):
                path.append(part)
            break
    dotted = ".".join(path) or "<root>"
    source = where.get(tuple(path)) or where.get(tuple(path[:-1])) or "the merged config"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    if err["type"] == "extra_forbidden":
        valid = _valid_keys(tuple(path[:-1]))
        hint = did_you_mean(path[-1], valid, cutoff=0.4, prefix="".join(p + "." for p in path[:-1]))
        return f"unknown config key '{dotted}' at {source}{hint}{more}"
    if err["type"] == "missing":
        return f"config key '{dotted}' is missing; add it to your YAML or pass --set {dotted}=...{more}"
    got = err.get("input")
    got_s = repr(got) if not isinstance(got, dict) else "a mapping"
    return f"config key '{dotted}' at {source}: {err['msg'][0].lower()}{err['msg'][1:]}, got {got_s}{more}"


def _valid_keys(parent: Path_) -> list[str]:
    from xmarl.core.methods import method_specs

    model: type[BaseModel] = run_model({n: s.config_model for n, s in method_specs().items()})
    for part in parent:
        field = model.model_fields.get(part)
        ann = getattr(field, "annotation", None)
        options = [a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not options:
            return []
        model = options[0]
    return list(model.model_fields)


def flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config (plain data) as ``{"maddpg.lr_actor": 0.01, ...}`` (empty mappings stay values)."""
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def save_config(cfg: BaseModel, path: str | os.PathLike[str], note: str | None = None) -> None:
    """Write the resolved config as YAML (atomically), ``note`` as a comment on its first line."""
    head = f"# {note}\n" if note else ""
    atomic_write_text(path, head + yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))


__all__ = ["load_config", "default_config", "save_config", "parse_overrides", "configs_dir", "group_section",
           "separate_learners", "flatten", "RunBase"]
