"""A picture of the history: the revision graph as Mermaid (GitHub draws it in Markdown: a
pull request's description, a README) or as text for a terminal::

    python -m migrations.cli picture                  # text, base at the bottom
    python -m migrations.cli picture --mermaid        # a ```mermaid block to paste
    python -m migrations.cli picture --database       # and where the configured database stands
    python -m migrations.cli picture --url URL ...    # where these databases stand

Shown: each revision (id and message), branch points and merge points, heads, irreversible
revisions (``irreversible = "why"``), revisions with data steps, and the databases asked
about (read only; passwords never shown).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from alembic.script import Script, ScriptDirectory

from migrations.conditional import has_data_steps
from migrations.irreversible import irreversible_reason


@dataclass
class Node:
    revision: str
    message: str
    parents: tuple[str, ...]
    children: list[str] = field(default_factory=list)
    irreversible: str | None = None
    data_steps: bool = False
    databases: list[str] = field(default_factory=list)  # the databases that stand here

    @property
    def marks(self) -> list[str]:
        marks = []
        if len(self.parents) > 1:
            marks.append(f"merge point of {', '.join(self.parents)}")
        if len(self.children) > 1:
            marks.append("branch point")
        if not self.children:
            marks.append("head")
        if self.irreversible:
            marks.append(f"irreversible: {self.irreversible}")
        if self.data_steps:
            marks.append("data steps")
        return marks


def graph(script: ScriptDirectory, standing: dict[str, list[str]] | None = None) -> list[Node]:
    """The history's revisions, heads first, each after all of its children (Alembic's order).
    ``standing``: a database's name -> the revisions it stands at."""
    revisions: list[Script] = list(script.walk_revisions("base", "heads"))
    nodes = {
        revision.revision: Node(
            revision.revision,
            " ".join((revision.doc or "").split()),
            tuple(revision._versioned_down_revisions),
            irreversible=irreversible_reason(revision),
            data_steps=has_data_steps(revision),
        )
        for revision in revisions
    }
    for node in nodes.values():
        for parent in node.parents:
            nodes[parent].children.append(node.revision)
    for name, at in (standing or {}).items():
        for revision in at:
            if revision in nodes:
                nodes[revision].databases.append(name)
    return [nodes[revision.revision] for revision in revisions]


def mermaid(nodes: list[Node], standing: dict[str, list[str]] | None = None) -> str:
    """A Mermaid flowchart, base at the top: paste it into a pull request as a ```mermaid block."""
    lines = ["```mermaid", "flowchart TD"]
    for node in reversed(nodes):
        label = _escape(f"{node.revision} {node.message}".strip())
        extra = [mark for mark in node.marks if mark not in ("head", "branch point")]
        if extra:
            label += "<br/><i>" + _escape(", ".join(extra)) + "</i>"
        hexagon = ("{" * 2 + '"', '"' + "}" * 2)  # a merge point (written so for the template's Jinja)
        shape = hexagon if len(node.parents) > 1 else ('(["', '"])') if not node.children else ('["', '"]')
        lines.append(f"    r{node.revision}{shape[0]}{label}{shape[1]}")
    for node in reversed(nodes):
        for parent in node.parents:
            lines.append(f"    r{parent} --> r{node.revision}")
    for number, (name, at) in enumerate((standing or {}).items()):
        lines.append(f'    db{number}[("{_escape(name)}")]')
        known = [revision for revision in at if any(node.revision == revision for node in nodes)]
        lines.extend(f"    db{number} -.-> r{revision}" for revision in known)
        if not known:
            where = f"at {', '.join(at)}, not in this history" if at else "no revision"
            lines[-1] = f'    db{number}[("{_escape(name)}<br/><i>{_escape(where)}</i>")]'
    classes = {
        "irreversible": [f"r{node.revision}" for node in nodes if node.irreversible],
        "data": [f"r{node.revision}" for node in nodes if node.data_steps],
        "database": [f"db{number}" for number in range(len(standing or {}))],
    }
    styles = {
        "irreversible": "fill:#fde2e1,stroke:#b42318",
        "data": "fill:#e0f2fe,stroke:#0369a1",
        "database": "fill:#fef9c3,stroke:#a16207",
    }
    for name, members in classes.items():
        if members:
            lines.append(f"    classDef {name} {styles[name]}")
            lines.append(f"    class {','.join(members)} {name}")
    lines.append("```")
    return "\n".join(lines)


def text(nodes: list[Node], standing: dict[str, list[str]] | None = None) -> str:
    """The graph for a terminal, heads at the top, one lane per branch (as ``git log --graph``)."""
    lanes: list[str | None] = []  # the revision each lane waits for
    out: list[str] = []

    def row(cells: list[str]) -> str:
        return " ".join(cells).rstrip()

    for node in nodes:
        joining = [index for index, waiting in enumerate(lanes) if waiting == node.revision]
        if not joining:
            lanes.append(node.revision)  # a head: a new lane
            joining = [len(lanes) - 1]
        column = joining[0]
        if len(joining) > 1:  # branches meet here: the later lanes close into this one
            out.append(row(["/" if index in joining[1:] else "|" for index in range(len(lanes))]))
            for index in reversed(joining[1:]):
                del lanes[index]
        cells = ["|" if waiting else " " for waiting in lanes]
        cells[column] = "*"
        words = f"{node.revision} {node.message}".strip()
        marks = node.marks + [f"<- {name}" for name in node.databases]
        out.append(row(cells) + "  " + words + (f"  [{'; '.join(marks)}]" if marks else ""))
        parents = list(node.parents)
        lanes[column] = parents[0] if parents else None
        for parent in parents[1:]:  # a merge point: its other parents open lanes to the right
            if parent in lanes:
                continue
            lanes.insert(column + 1, parent)
            opened = ["\\" if index == column + 1 else "|" if waiting else " " for index, waiting in enumerate(lanes)]
            out.append(row(opened))
        while lanes and lanes[-1] is None:
            lanes.pop()
    known = {node.revision for node in nodes}
    for name, at in (standing or {}).items():
        if not at:
            out.append(f"{name}: no revision (empty, or not managed by this history)")
        elif not set(at) <= known:
            out.append(f"{name}: at {', '.join(at)}, not in this history (newer code migrated it?)")
    return "\n".join(out) if out else "The history has no revision yet."


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "#quot;").replace("<", "&lt;").replace(">", "&gt;")
