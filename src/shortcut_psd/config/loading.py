"""YAML config files without silent duplicate keys.

PyYAML keeps the last of two equal keys in a mapping without a word, which would hide a typo'd second
init or artifact; :func:`load_yaml` refuses them, naming the dotted key, and names the file on syntax
errors.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from shortcut_psd.errors import ConfigError


class _UniqueKeyLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(
                f"duplicate key '{key}' at line {key_node.start_mark.line + 1} of {key_node.start_mark.name} "
                f"(first at line {seen[key] + 1}); YAML would silently keep only the last one. "
                "Rename or remove one of them."
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _check_duplicate_keys(node: yaml.Node, path: list[str], name: str, seen_nodes: set[int]) -> None:
    """Walk a composed YAML tree and refuse a key given twice in one mapping, naming its dotted key."""
    if id(node) in seen_nodes:  # an alias to a node already checked (also guards recursive aliases)
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            label = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "<complex key>"
            dotted = ".".join([*path, label])
            ident = (key_node.tag, label)
            if isinstance(key_node, yaml.ScalarNode) and ident in seen:
                raise ConfigError(
                    f"config key '{dotted}' appears twice in {name} (lines {seen[ident] + 1} and "
                    f"{key_node.start_mark.line + 1}); YAML would silently keep only the last one. "
                    "Rename or remove one of them."
                )
            seen[ident] = key_node.start_mark.line
            _check_duplicate_keys(value_node, [*path, label], name, seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicate_keys(item, [*path, str(i)], name, seen_nodes)


def load_yaml(path: str | os.PathLike) -> dict:
    """Load a YAML config file, refusing duplicate keys (named by their dotted key) and naming the file
    on syntax errors."""
    path = Path(path)
    try:
        with open(path) as fh:
            text = fh.read()
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            _check_duplicate_keys(node, [], str(path), set())
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys, not {type(data).__name__}")
    return data
