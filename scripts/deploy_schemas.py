"""Lay out JSON schemas for kubeconform, from packages of the registries this machine reaches.

Two sources, each written as kubeconform's standalone-strict layout
(``OUT/v<version>-standalone-strict/<kind>-<group>-<version>.json``):

- ``k8s SCHEMA_DIR VERSION OUT``: the Kubernetes schemas of the PyPI package
  ``kubernetes-validate`` (``kubernetes_validate/kubernetes-json-schema/v<version>-local-strict``),
  whose ``$ref`` point at one shared ``_definitions.json``. Each resource's schema gets the
  definitions it reaches copied in, so kubeconform resolves every reference in one file.
- ``crd CRD_YAML... OUT``: CustomResourceDefinitions (as controller-gen writes them from an
  operator's Go API types); each served version's ``openAPIV3Schema`` becomes a schema,
  with ``additionalProperties: false`` on every object that lists its properties (strict:
  a misspelt field is an error, as kubeconform's own conversion script does).

``k8s`` needs only the standard library; ``crd`` reads YAML with PyYAML (run it with the
project's virtual environment).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# A resource's schema points into the shared file; the shared file points into itself.
_PREFIXES = ("/api/_definitions.json#/$defs/", "#/$defs/")


def _name(ref: object) -> str | None:
    for prefix in _PREFIXES:
        if isinstance(ref, str) and ref.startswith(prefix):
            return ref.removeprefix(prefix)
    return None


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        if (name := _name(node.get("$ref"))) is not None:
            found.add(name)
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _rewrite(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _rewrite(v) for k, v in node.items()}
        if (name := _name(out.get("$ref"))) is not None:
            out["$ref"] = "#/$defs/" + name
        return out
    if isinstance(node, list):
        return [_rewrite(v) for v in node]
    return node


def standalone_k8s(source: Path, version: str, out: Path) -> int:
    """Write every top-level resource schema of ``source`` with its definitions inlined.

    Args:
        source: The ``v<version>-local-strict`` folder of ``kubernetes-validate``.
        version: The Kubernetes version, such as ``1.34.0``.
        out: The root of kubeconform's schema layout.

    Returns:
        How many schemas were written.
    """
    defs: dict[str, Any] = json.loads((source / "_definitions.json").read_text())["$defs"]
    target = out / f"v{version}-standalone-strict"
    target.mkdir(parents=True, exist_ok=True)
    written = 0
    for path in sorted(source.glob("*.json")):
        if path.name.startswith("_") or path.name == "all.json":
            continue
        schema = json.loads(path.read_text())
        if "kind" not in schema.get("properties", {}):
            continue  # a fragment, not a resource kubeconform looks up
        needed: set[str] = set()
        _refs(schema, needed)
        pending = list(needed)
        while pending:
            more: set[str] = set()
            _refs(defs[pending.pop()], more)
            pending.extend(more - needed)
            needed |= more
        schema.pop("$id", None)  # a remote base address: resolve "#/$defs/..." in this file
        schema["$defs"] = {name: defs[name] for name in sorted(needed)}
        (target / path.name).write_text(json.dumps(_rewrite(schema)))
        written += 1
    return written


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items()}
        if out.get("type") == "object" and "properties" in out:
            out.setdefault("additionalProperties", False)
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


def crd_schemas(crds: list[Path], out: Path) -> int:
    """Write one strict schema per served version of each CRD.

    Args:
        crds: CustomResourceDefinition YAML files (one object each; JSON is YAML too,
            and controller-gen's YAML is read with a minimal loader below).
        out: The folder for the schemas (kubeconform's ``{{ .ResourceKind }}...`` names).

    Returns:
        How many schemas were written.
    """
    import yaml  # PyYAML: the CRDs are YAML; the caller runs this with the project's venv

    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for path in crds:
        crd = yaml.safe_load(path.read_text())
        kind = crd["spec"]["names"]["kind"].lower()
        group = crd["spec"]["group"].split(".")[0]
        for version in crd["spec"]["versions"]:
            schema = _strict(version["schema"]["openAPIV3Schema"])
            name = f"{kind}-{group}-{version['name']}.json"
            (out / name).write_text(json.dumps(schema))
            written += 1
    return written


def main(argv: list[str]) -> int:
    """Run one of the two conversions; print what was written."""
    if len(argv) == 4 and argv[0] == "k8s":
        count = standalone_k8s(Path(argv[1]), argv[2], Path(argv[3]))
    elif len(argv) >= 3 and argv[0] == "crd":
        count = crd_schemas([Path(p) for p in argv[1:-1]], Path(argv[-1]))
    else:
        sys.stderr.write("usage: deploy_schemas.py k8s SCHEMA_DIR VERSION OUT | crd CRD... OUT\n")
        return 2
    sys.stdout.write(f"{count} schemas\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
