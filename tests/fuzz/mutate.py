"""Structure-aware mutation: a real input's parsed tree (YAML or JSON: dicts, lists, scalars) changed the way people
get files wrong, then dumped back to text for the reader under test.

Random bytes would almost all stop at the YAML parser; a mutated tree reaches the validation and the code behind it.
Each mutation picks one node of the tree and drops it, retypes it (a scalar, list, dict, None or string where
something else belongs), duplicates it, renames it, nests it one level too deep or too shallow, or splices in a key
or value seen elsewhere in the same kind of file. The steps are kept as text, so a crash names what was done.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

Path = tuple[Any, ...]  # keys and indexes from the root to a node

_ODD_STRINGS = ["", " ", "*", "-", "none", "null", "true", "0", "-1", "²", "1.2.3", "3.6.9", "::1", "127.0.0.1",
                "[::1]:11112", "a" * 300, "ü-ñ", "{{ undefined_variable }}", "{{", "x\ny", "../../etc", "/", "~",
                "Gateway/", "EnvoyBootstrap/missing", "dicom.example.test", "1/0", "K/N"]
_ODD_NUMBERS = [0, -1, 1, 2, 65535, 65536, 10**12, 1.5, -0.0, float("inf")]


@dataclass(frozen=True)
class Pools:
    """What a kind of file holds elsewhere: keys, scalars and small subtrees to splice into another place."""

    keys: tuple[str, ...]
    scalars: tuple[Any, ...]
    subtrees: tuple[Any, ...]

    @classmethod
    def of(cls, trees: Sequence[Any]) -> "Pools":
        keys: dict[str, None] = {}
        scalars: dict[Any, None] = {}
        subtrees: list[Any] = []
        for tree in trees:
            for _, node in walk(tree):
                if isinstance(node, dict):
                    keys.update(dict.fromkeys(str(k) for k in node))
                    if len(repr(node)) < 200:
                        subtrees.append(node)
                elif isinstance(node, list):
                    if len(repr(node)) < 200:
                        subtrees.append(node)
                elif not isinstance(node, float) or node == node:
                    scalars[(type(node), node)] = None
        return cls(tuple(sorted(keys)), tuple(v for _, v in scalars), tuple(subtrees[:400]))


@dataclass(frozen=True, repr=False)
class Mutated:
    """A tree after its mutations, with what they were (for the report of a crash)."""

    seed: str  # which real input it started from
    tree: Any
    steps: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.seed}: " + "; ".join(self.steps)

    def __repr__(self) -> str:  # what hypothesis prints for a falsifying example: the steps, not the whole tree
        return f"<{self.describe()}>"


def walk(tree: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every node with its path, the root first."""
    yield path, tree
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from walk(value, (*path, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from walk(value, (*path, index))


def _shown(path: Path) -> str:
    return ".".join(str(p) for p in path) or "(root)"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _replaced(tree: Any, path: Path, value: Any) -> Any:
    if not path:
        return value
    parent = tree
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return tree


def _parent(tree: Any, path: Path) -> Any:
    node = tree
    for part in path[:-1]:
        node = node[part]
    return node


def _other_values(draw: st.DrawFn, pools: Pools, current: Any) -> Any:
    """A value of another shape than ``current``: the kinds of wrong value people write."""
    choices = st.one_of(
        st.sampled_from(_ODD_NUMBERS),
        st.sampled_from(_ODD_STRINGS),
        st.sampled_from([None, True, False, [], {}]),
        st.just([current]),
        st.just({"value": current}),
        st.just(str(current)),
        st.sampled_from(pools.scalars) if pools.scalars else st.none(),
        st.sampled_from(pools.subtrees) if pools.subtrees else st.none(),
        st.text(max_size=12),
        st.integers(min_value=-(2**40), max_value=2**40),
    )
    return copy.deepcopy(draw(choices))


@st.composite
def _mutation(draw: st.DrawFn, tree: Any, pools: Pools) -> tuple[Any, str]:
    # A depth first, then a node at that depth: a big file's leaves would otherwise take nearly every mutation,
    # and its top-level keys (probes, expect, environments) almost none.
    by_depth: dict[int, list[tuple[Path, Any]]] = {}
    for path, node in walk(tree):
        by_depth.setdefault(len(path), []).append((path, node))
    depth = draw(st.sampled_from(sorted(by_depth)))
    path, node = draw(st.sampled_from(by_depth[depth]))
    parent = _parent(tree, path) if path else None
    operations = ["retype", "string", "nest", "splice-key"]
    if path:
        operations += ["drop", "duplicate"]
    if isinstance(node, list) and node:
        operations += ["unnest", "drop-item", "duplicate-item"]
    if isinstance(node, dict) and node:
        operations += ["rename-key", "dict-to-list"]
    operation = draw(st.sampled_from(operations))
    where = _shown(path)
    if operation == "retype":
        value = _other_values(draw, pools, node)
        return _replaced(tree, path, value), f"{where} -> {_short(value)}"
    if operation == "string":
        value = draw(st.sampled_from([*_ODD_STRINGS, *(s for s in pools.scalars if isinstance(s, str))]))
        if isinstance(node, str) and draw(st.booleans()):
            value = node + value if draw(st.booleans()) else node[: len(node) // 2]
        return _replaced(tree, path, value), f"{where} -> {_short(value)}"
    if operation == "nest":
        value = [node] if draw(st.booleans()) else {draw(st.sampled_from(pools.keys or ("x",))): node}
        return _replaced(tree, path, value), f"{where} nested in {type(value).__name__}"
    if operation == "unnest":
        return _replaced(tree, path, node[0]), f"{where}: list -> its first item"
    if operation == "dict-to-list":
        value = list(node.values()) if draw(st.booleans()) else list(node)
        return _replaced(tree, path, value), f"{where}: dict -> list"
    if operation == "drop":
        del parent[path[-1]]
        return tree, f"{where} dropped"
    if operation == "duplicate":
        if isinstance(parent, list):
            parent.insert(path[-1], copy.deepcopy(node))
            return tree, f"{where} duplicated"
        value = copy.deepcopy(node)
        return _replaced(tree, path, [value, copy.deepcopy(value)]), f"{where} -> [it, it]"
    if operation == "drop-item":
        index = draw(st.integers(0, len(node) - 1))
        del node[index]
        return tree, f"{where}[{index}] dropped"
    if operation == "duplicate-item":
        index = draw(st.integers(0, len(node) - 1))
        node.insert(index, copy.deepcopy(node[index]))
        return tree, f"{where}[{index}] duplicated"
    if operation == "rename-key":
        old = draw(st.sampled_from(list(node)))
        new = draw(st.sampled_from([*pools.keys, *_ODD_STRINGS[:6]]))
        node[new] = node.pop(old)
        return tree, f"{where}: key {old!r} -> {new!r}"
    # splice-key: a key seen elsewhere in such files, with a value of any shape
    key = draw(st.sampled_from(pools.keys or ("x",)))
    value = _other_values(draw, pools, None)
    target = node if isinstance(node, dict) else (parent if isinstance(parent, dict) else None)
    if target is None:
        return _replaced(tree, path, {key: value}), f"{where} -> {{{key!r}: {_short(value)}}}"
    target[key] = value
    return tree, f"{where if target is node else _shown(path[:-1])}.{key} = {_short(value)}"


@st.composite
def mutated(draw: st.DrawFn, seeds: Sequence[tuple[str, Any]], pools: Pools, most: int = 3) -> Mutated:
    """One of ``seeds`` (name, tree) with 1..``most`` mutations applied to a copy."""
    name, original = draw(st.sampled_from(seeds))
    tree = copy.deepcopy(original)
    steps = []
    for _ in range(draw(st.integers(1, most))):
        tree, step = draw(_mutation(tree, pools))
        steps.append(step)
    return Mutated(name, tree, tuple(steps))
