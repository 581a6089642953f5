"""Entity graphs: per-seed subgraphs merged into one networkx graph, node-link JSON, stats, plot.

Node ids are normalized entity names ("My Husband's" and "husband" are one node), so entities
shared by several seeds connect their subgraphs. Nodes carry a label, a type and the seed ids
that mention them; edges carry their relation labels and seed ids. Everything is inserted in
sorted order, so the serialized graph is byte-for-byte deterministic.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx

from falsereject.core.plotting import pyplot

ENTITY_TYPES = ("person", "place", "object", "concept", "organization", "action")
# Typed edges (the paper leaves edge types open): a closed set keeps a weak extractor's edges
# readable and lets graphs from different extractors be compared.
RELATION_TYPES = ("uses", "targets", "harms", "owns", "located_in", "part_of", "involves",
                  "related_to")
_LEADING = {"a", "an", "the", "my", "his", "her", "their", "our", "your", "its", "some"}


@dataclass(frozen=True)
class Node:
    id: str
    label: str
    type: str

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "label": self.label, "type": self.type}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    relation: str

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "target": self.target, "relation": self.relation}


def normalize_name(name: str) -> str:
    """Node id for an entity name: lowercase, no possessive, no leading article/pronoun."""
    text = unicodedata.normalize("NFKC", name).replace("\u2019", "'").lower()
    text = re.sub(r"'s\b", "", text)
    words = re.findall(r"[a-z0-9]+(?:[-'][a-z0-9]+)*", text)
    while words and words[0] in _LEADING:
        words = words[1:]
    return " ".join(words)


def clean_label(name: str) -> str:
    return " ".join(name.split()).strip(" .,;:!?\"'")


def subgraph(nodes: Iterable[Node], edges: Iterable[Edge]) -> tuple[list[Node], list[Edge]]:
    """Dedup nodes by id (first label/type wins) and edges by (source, target, relation);
    drop self-loops and edges whose ends are not nodes. Sorted for stable output."""
    by_id: dict[str, Node] = {}
    for n in nodes:
        if n.id and n.id not in by_id:
            by_id[n.id] = n
    seen: set[tuple[str, str, str]] = set()
    kept: list[Edge] = []
    for e in edges:
        key = (e.source, e.target, e.relation)
        if e.source == e.target or e.source not in by_id or e.target not in by_id:
            continue
        if key not in seen:
            seen.add(key)
            kept.append(e)
    return sorted(by_id.values(), key=lambda n: n.id), sorted(
        kept, key=lambda e: (e.source, e.target, e.relation)
    )


def _majority(values: list[str]) -> str:
    counts = Counter(values)
    return min(counts, key=lambda v: (-counts[v], v))


def build_graph(rows: Iterable[dict[str, Any]]) -> nx.DiGraph:
    """Merge the subgraphs of `ok` rows ({seed_id, status, nodes, edges}) into one graph."""
    labels: dict[str, list[str]] = {}
    types: dict[str, list[str]] = {}
    node_seeds: dict[str, set[str]] = {}
    rels: dict[tuple[str, str], set[str]] = {}
    edge_seeds: dict[tuple[str, str], set[str]] = {}
    for row in rows:
        if row.get("status") != "ok":
            continue
        sid = row["seed_id"]
        for n in row["nodes"]:
            labels.setdefault(n["id"], []).append(n["label"])
            types.setdefault(n["id"], []).append(n["type"])
            node_seeds.setdefault(n["id"], set()).add(sid)
        for e in row["edges"]:
            key = (e["source"], e["target"])
            rels.setdefault(key, set()).add(e["relation"])
            edge_seeds.setdefault(key, set()).add(sid)
    g = nx.DiGraph()
    for nid in sorted(labels):
        g.add_node(nid, label=_majority(labels[nid]), type=_majority(types[nid]),
                   seed_ids=sorted(node_seeds[nid]))
    for key in sorted(rels):
        g.add_edge(*key, relations=sorted(rels[key]), seed_ids=sorted(edge_seeds[key]))
    return g


def to_node_link(g: nx.DiGraph) -> dict[str, Any]:
    return nx.node_link_data(g, edges="edges")


def from_node_link(data: dict[str, Any]) -> nx.DiGraph:
    return nx.node_link_graph(data, directed=True, multigraph=False, edges="edges")


def graph_stats(g: nx.DiGraph, max_degree_bucket: int = 5) -> dict[str, Any]:
    """Flat metrics: size, components, degree distribution (bucketed), entity types."""
    und = g.to_undirected(as_view=True)
    comps = sorted((len(c) for c in nx.connected_components(und)), reverse=True)
    degrees = [d for _, d in und.degree()]
    out: dict[str, Any] = {
        "nodes_count": g.number_of_nodes(),
        "edges_count": g.number_of_edges(),
        "connected_components_count": len(comps),
        "largest_component_nodes_count": comps[0] if comps else 0,
        "isolated_nodes_count": sum(1 for d in degrees if d == 0),
        "degree_mean": round(sum(degrees) / len(degrees), 4) if degrees else 0.0,
        "degree_max": max(degrees) if degrees else 0,
        "shared_nodes_count": sum(1 for _, s in g.nodes(data="seed_ids") if len(s) > 1),
    }
    hist = Counter(min(d, max_degree_bucket) for d in degrees)
    for d in range(max_degree_bucket + 1):
        suffix = f"{d}_plus" if d == max_degree_bucket else str(d)
        out[f"degree_{suffix}_nodes_count"] = hist.get(d, 0)
    type_counts = Counter(t for _, t in g.nodes(data="type"))
    for t in ENTITY_TYPES:
        out[f"entity_type_{t}_count"] = type_counts.get(t, 0)
    return out


def largest_components(g: nx.DiGraph, max_nodes: int) -> nx.DiGraph:
    """The biggest connected components that fit in `max_nodes` together (at least one)."""
    comps = sorted(nx.connected_components(g.to_undirected(as_view=True)),
                   key=lambda c: (-len(c), sorted(c)))
    keep: set[str] = set()
    for comp in comps:
        if keep and len(keep) + len(comp) > max_nodes:
            break
        keep |= comp
    return g.subgraph(keep).copy()


def draw(g: nx.DiGraph, path: str | Path, *, max_nodes: int = 120, seed: int = 0) -> None:
    """PNG of the graph, or of its biggest components when it has more than `max_nodes`."""
    plt = pyplot()
    view = g if g.number_of_nodes() <= max_nodes else largest_components(g, max_nodes)
    title = (f"entity graph: {g.number_of_nodes()} nodes, {g.number_of_edges()} edges"
             + ("" if view is g else f" (biggest components: {view.number_of_nodes()} nodes)"))
    fig, ax = plt.subplots(figsize=(14, 10), dpi=100)
    ax.set_title(title)
    ax.axis("off")
    if view.number_of_nodes():
        pos = nx.spring_layout(view, seed=seed, k=2.0 / max(1, view.number_of_nodes()) ** 0.5)
        palette = dict(zip(ENTITY_TYPES, plt.get_cmap("tab10").colors, strict=False))
        colors = [palette.get(t, (0.5, 0.5, 0.5)) for _, t in view.nodes(data="type")]
        sizes = [120 + 80 * len(s) for _, s in view.nodes(data="seed_ids")]
        nx.draw_networkx_edges(view, pos, ax=ax, alpha=0.4, arrows=True, arrowsize=8)
        nx.draw_networkx_nodes(view, pos, ax=ax, node_color=colors, node_size=sizes)
        if view.number_of_nodes() <= max_nodes:
            nx.draw_networkx_labels(view, pos, ax=ax, font_size=6,
                                    labels={n: d["label"] for n, d in view.nodes(data=True)})
        handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=t)
                   for t, c in palette.items()]
        ax.legend(handles=handles, loc="lower left", fontsize=8)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", bbox_inches="tight")
    plt.close(fig)
