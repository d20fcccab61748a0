"""The operated network as a tree, and linear sensitivities read off one solved power flow.

Distribution networks are operated radially: with the open switches open, every bus has one path
to the supply. On that tree, extra load of δ W at bus j changes, to first order:

- the power through every branch on j's path to the supply by δ (plus the losses it adds on
  the way), and nothing else;
- the voltage of every bus i by −δ·Σ R/(U·U_n²) over the branches that i's and j's paths share
  (the drop R·P/U of each shared branch grows; R in Ω, U the per-unit voltage at the branch's
  far end, U_n its nominal voltage, so the sum is in per unit per W).

So a branch's loading reacts only to load below it, and a bus voltage to the cumulative
resistance down to the point where the two paths part: O(buses) for a row or a column of the
sensitivity matrix instead of one power flow per bus. The extra losses the added flow causes
below each branch are included to first order (2·R·P/U² per W through each branch, with the
solved flows), and the loading slopes use the solved flows as a 1 kW finite difference would
(|S| with the probe added, a line's current growing as its voltage falls);
``tests/backend/network/test_sensitivity.py`` holds the result to finite differences on the
batch engine.

The tree comes from power-grid-model's input data (the engine's own topology, switches
applied). Buses joined by closed bus-bar couplers (zero-impedance links) are one node of the
tree, and branches in parallel between the same two nodes (the two HV/MV transformers of
SimBench's MV grids) are one edge whose change of flow divides in inverse proportion to their
impedances. A real loop, a three-winding transformer or a generic branch makes the network not
a tree: ``RadialTree.radial`` is False, ``reason`` says why, and callers fall back to finite
differences.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

LINE, TRANSFORMER = 0, 1
PROBE_W = 1_000.0  # the loading slope is |S| with 1 kW added, as a finite-difference probe measures it
_UNSUPPORTED = ("three_winding_transformer", "generic_branch", "asym_line")


@dataclass(frozen=True)
class BranchState:
    """One kind of branch's solved flows (power-grid-model's output, its row order)."""

    p_from: FloatArray
    q_from: FloatArray
    i_from: FloatArray
    s_from: FloatArray
    p_to: FloatArray
    q_to: FloatArray
    i_to: FloatArray
    s_to: FloatArray
    loading: FloatArray  # fraction of the rating

    @classmethod
    def of(cls, output: Any) -> BranchState:
        """From one slot's structured output array (a row per branch)."""
        return cls(*(np.asarray(output[name], dtype=np.float64) for name in cls.__dataclass_fields__))


def _closed(table: Any) -> IntArray:
    if table is None or not len(table):
        return np.zeros(0, np.int64)
    return np.flatnonzero((table["from_status"] == 1) & (table["to_status"] == 1)).astype(np.int64)


class RadialTree:
    """The energised network as a forest rooted at its sources.

    Buses are rows of the engine's node array; the tree's nodes are groups of buses joined by
    closed links; its edges are groups of parallel branches. ``members`` are the closed lines
    and transformers, each in exactly one edge."""

    def __init__(self, data: Mapping[Any, Any]) -> None:
        nodes = data["node"]
        n = len(nodes)
        self.buses = n
        self.u_rated = np.asarray(nodes["u_rated"], dtype=np.float64)
        index = {int(i): k for k, i in enumerate(nodes["id"])}
        self.reason = ""
        for name in _UNSUPPORTED:
            if name in data and len(data[name]):
                self.reason = f"it has {len(data[name])} {name.replace('_', ' ')}(s)"

        # Buses joined by closed links are one node (union-find).
        root = list(range(n))

        def find(x: int) -> int:
            while root[x] != x:
                root[x] = root[root[x]]
                x = root[x]
            return x

        links: Any = data.get("link")
        for row in _closed(links).tolist():
            x, y = find(index[int(links["from_node"][row])]), find(index[int(links["to_node"][row])])
            root[x] = y
        reps = np.array([find(x) for x in range(n)], np.int64)
        _, group = np.unique(reps, return_inverse=True)
        self.group = group.astype(np.int64)  # bus → tree node
        g = int(self.group.max()) + 1 if n else 0
        self.nodes = g

        # Members: closed lines and transformers, with their ends as tree nodes.
        kind_parts, row_parts, a_parts, b_parts, rho_parts, z_parts = [], [], [], [], [], []
        for kind, name in ((LINE, "line"), (TRANSFORMER, "transformer")):
            table: Any = data.get(name)
            closed = _closed(table)
            if not len(closed):
                continue
            frm = np.array([index[int(x)] for x in table["from_node"][closed]], np.int64)
            to = np.array([index[int(x)] for x in table["to_node"][closed]], np.int64)
            kind_parts.append(np.full(len(closed), kind, np.int64))
            row_parts.append(closed)
            a_parts.append(frm)
            b_parts.append(to)
            if kind == LINE:
                un2 = self.u_rated[to] ** 2
                rho_parts.append(np.asarray(table["r1"][closed], dtype=np.float64) / un2)  # R/U_n², 1/W
                z_parts.append(np.hypot(table["r1"][closed], table["x1"][closed]) / un2)
            else:
                # R referred to a side of nominal voltage U_n is (pk/sn)·U_n²/sn: over U_n², pk/sn².
                sn = np.asarray(table["sn"][closed], dtype=np.float64)
                rho_parts.append(np.asarray(table["pk"][closed], dtype=np.float64) / sn**2)
                z_parts.append(np.asarray(table["uk"][closed], dtype=np.float64) / sn)
        cat = np.concatenate
        self.member_kind = cat(kind_parts) if kind_parts else np.zeros(0, np.int64)
        self.member_row = cat(row_parts) if row_parts else np.zeros(0, np.int64)
        self.member_from = cat(a_parts) if a_parts else np.zeros(0, np.int64)  # buses, as power-grid-model orients
        self.member_to = cat(b_parts) if b_parts else np.zeros(0, np.int64)
        member_rho = cat(rho_parts) if rho_parts else np.zeros(0)
        member_z = cat(z_parts) if z_parts else np.zeros(0)

        # Edges: members grouped by the unordered pair of tree nodes they join.
        ga, gb = self.group[self.member_from], self.group[self.member_to]
        if np.any(ga == gb) and not self.reason:
            self.reason = "it has a branch whose ends are joined by bus-bar couplers (a loop)"
        pairs: dict[tuple[int, int], list[int]] = {}
        for m, (x, y) in enumerate(zip(ga.tolist(), gb.tolist(), strict=True)):
            if x != y:
                pairs.setdefault((min(x, y), max(x, y)), []).append(m)
        edge_ends = list(pairs)
        self.member_edge = np.full(len(self.member_kind), -1, np.int64)
        self.member_share = np.zeros(len(self.member_kind))
        edge_rho = np.zeros(len(edge_ends))
        for e, key in enumerate(edge_ends):
            members = np.asarray(pairs[key], np.int64)
            self.member_edge[members] = e
            admittance = 1.0 / np.maximum(member_z[members], 1e-30)
            self.member_share[members] = admittance / admittance.sum()
            rho = member_rho[members]
            edge_rho[e] = 0.0 if np.any(rho <= 0) else 1.0 / float(np.sum(1.0 / rho))
        self.edge_rho = edge_rho

        sources = data.get("source")
        tree_roots: list[int] = []
        if sources is not None and len(sources):
            tree_roots = sorted({int(self.group[index[int(x)]]) for x in sources["node"][sources["status"] == 1]})
        adjacency: list[list[int]] = [[] for _ in range(g)]
        for e, (x, y) in enumerate(edge_ends):
            adjacency[x].append(e)
            adjacency[y].append(e)

        parent = np.full(g, -1, np.int64)
        parent_edge = np.full(g, -1, np.int64)
        tin = np.full(g, -1, np.int64)
        tout = np.full(g, -1, np.int64)
        euler: list[int] = []
        edge_child = np.full(len(edge_ends), -1, np.int64)
        edge_parent = np.full(len(edge_ends), -1, np.int64)
        seen = np.zeros(g, bool)
        for top in tree_roots:
            if seen[top]:
                self.reason = self.reason or "two sources feed one part of it"
                continue
            seen[top] = True
            tin[top] = len(euler)
            euler.append(top)
            stack = [(top, iter(adjacency[top]))]
            while stack:
                node, edges = stack[-1]
                for e in edges:
                    if e == parent_edge[node]:
                        continue
                    x, y = edge_ends[e]
                    other = y if x == node else x
                    if seen[other]:
                        self.reason = self.reason or "it has a loop (a closed ring or meshed branches)"
                        continue
                    seen[other] = True
                    parent[other], parent_edge[other] = node, e
                    edge_child[e], edge_parent[e] = other, node
                    tin[other] = len(euler)
                    euler.append(other)
                    stack.append((other, iter(adjacency[other])))
                    break
                else:
                    tout[node] = len(euler)
                    stack.pop()
        self.radial = not self.reason
        self.parent, self.parent_edge, self.tin, self.tout = parent, parent_edge, tin, tout
        self.euler = np.asarray(euler, np.int64)
        self.edge_child, self.edge_parent = edge_child, edge_parent
        self.edge_members = [np.asarray(pairs[key], np.int64) for key in edge_ends]
        # Each branch row's member (−1: open, so never loaded by the market).
        self.member_of: dict[str, IntArray] = {}
        for kind, name in ((LINE, "line"), (TRANSFORMER, "transformer")):
            rows = data.get(name)
            lookup = np.full(0 if rows is None else len(rows), -1, np.int64)
            mine = np.flatnonzero(self.member_kind == kind)
            lookup[self.member_row[mine]] = mine
            self.member_of[name] = lookup

    def path_edges(self, node: int) -> list[int]:
        """The tree edges from tree node ``node`` up to its source."""
        edges = []
        while self.parent_edge[node] >= 0:
            edges.append(int(self.parent_edge[node]))
            node = int(self.parent[node])
        return edges

    def below(self, node: int) -> npt.NDArray[np.bool_]:
        """Per bus: whether it is fed through tree node ``node`` (``node`` included)."""
        inside = np.zeros(self.nodes, bool)
        if self.tin[node] >= 0:
            inside[self.euler[self.tin[node] : self.tout[node]]] = True
        return np.asarray(inside[self.group])

    def feeder_of(self, bus: int) -> IntArray:
        """The buses under the transformer nearest above ``bus`` (its LV grid, on an MV/LV
        network), or the whole tree if no transformer is above it."""
        node = int(self.group[bus])
        while self.parent_edge[node] >= 0:
            edge = int(self.parent_edge[node])
            if np.any(self.member_kind[self.edge_members[edge]] == TRANSFORMER):
                break
            node = int(self.parent[node])
        return np.flatnonzero(self.below(node)).astype(np.int64)


@dataclass(frozen=True)
class Linearisation:
    """The tree's first-order response at one solved state, per W of extra load at a bus.

    Per tree node n, cumulated from the source down: ``vcum`` Σ R/(U·U_n²) (the voltage drop per
    W through every edge above n), ``lam`` Σ 2·R·P/(U²·U_n²) (the losses each extra W carried
    through those edges adds, with P each edge's solved flow) and ``wcum`` Σ R/(U·U_n²)·lam(edge's
    child). Extra load δ at bus j draws δ·(1 + lam[j] − lam[c]) through an edge with child c on
    j's path (its own load plus the losses it adds below c), so a bus i's voltage moves by
    −δ·((1 + lam[j])·vcum[L] − wcum[L]), L the node where i's and j's paths part."""

    tree: RadialTree
    vcum: FloatArray
    lam: FloatArray
    wcum: FloatArray
    member_slope: FloatArray  # per member branch: loading (%) per W drawn through its measured end
    member_lam: FloatArray  # lam at the node of the member's measured end

    @classmethod
    def at(
        cls,
        tree: RadialTree,
        u_pu: FloatArray,
        lines: BranchState,
        trafos: BranchState,
        *,
        i_n: FloatArray,
        sn: FloatArray,
    ) -> Linearisation:
        """At the solved bus voltages (pu, node order) and branch flows (row order); ``i_n`` and
        ``sn`` are the lines' and transformers' ratings (A, VA), in row order."""
        u_bus = np.where(u_pu > 0, u_pu, 1.0)  # an unenergised bus has no voltage; it is in no tree
        u_node = np.ones(tree.nodes)
        u_node[tree.group] = u_bus
        in_tree = tree.edge_child >= 0
        edge_u = np.ones(len(tree.edge_rho))
        edge_u[in_tree] = u_node[tree.edge_child[in_tree]]
        per_edge = np.where(in_tree, tree.edge_rho / edge_u, 0.0)

        # Each member's flow at its two ends, oriented towards the edge's child (where load is added).
        members = np.flatnonzero(tree.member_edge >= 0)
        members = members[in_tree[tree.member_edge[members]]]
        parent_node = tree.edge_parent[tree.member_edge[members]]
        from_is_parent = tree.group[tree.member_from[members]] == parent_node
        edge_p = np.zeros(len(tree.edge_rho))
        sides: dict[int, tuple[IntArray, BranchState]] = {}
        for kind, state in ((LINE, lines), (TRANSFORMER, trafos)):
            mine = tree.member_kind[members] == kind
            rows = tree.member_row[members[mine]]
            # Power into the member at the parent's end flows towards the child.
            p_parent_end = np.where(from_is_parent[mine], state.p_from[rows], state.p_to[rows])
            np.add.at(edge_p, tree.member_edge[members[mine]], p_parent_end)
            sides[kind] = (members[mine], state)
        edge_lam = 2.0 * tree.edge_rho * edge_p / edge_u**2

        vcum, lam, wcum = np.zeros(tree.nodes), np.zeros(tree.nodes), np.zeros(tree.nodes)
        parent, parent_edge = tree.parent, tree.parent_edge
        for node in tree.euler.tolist():  # parents come before their children in DFS order
            e = parent_edge[node]
            if e >= 0:
                up = parent[node]
                vcum[node] = vcum[up] + per_edge[e]
                lam[node] = lam[up] + edge_lam[e]
                wcum[node] = wcum[up] + per_edge[e] * lam[node]

        slope = np.zeros(len(tree.member_kind))
        member_lam = np.zeros(len(tree.member_kind))
        for kind, rating in ((LINE, i_n), (TRANSFORMER, sn)):
            chosen, state = sides[kind]
            if not len(chosen):
                continue
            row = tree.member_row[chosen]
            use_from = state.i_from[row] >= state.i_to[row] if kind == LINE else state.s_from[row] >= state.s_to[row]
            side_bus = np.where(use_from, tree.member_from[chosen], tree.member_to[chosen])
            p = np.where(use_from, state.p_from[row], state.p_to[row])
            q = np.where(use_from, state.q_from[row], state.q_to[row])
            side_node = tree.group[side_bus]
            at_parent = side_node == tree.edge_parent[tree.member_edge[chosen]]
            p_down = np.where(at_parent, p, -p)  # power at the measured end, towards the child
            share = tree.member_share[chosen]
            growth = (np.hypot(p_down + share * PROBE_W, q) - np.hypot(p_down, q)) / PROBE_W  # d|S|/dP
            if kind == LINE:
                u_side = u_bus[side_bus]
                rated = np.sqrt(3.0) * u_side * tree.u_rated[side_bus] * rating[row]
                # A line's loading is its current |S|/(√3·U): it also grows as U falls.
                slope[chosen] = 100.0 * (growth / rated + state.loading[row] * vcum[side_node] / u_side)
            else:
                slope[chosen] = 100.0 * growth / rating[row]
            member_lam[chosen] = lam[side_node]
        return cls(tree, vcum, lam, wcum, slope, member_lam)

    def _by_lca(self, bus: int, values: FloatArray) -> FloatArray:
        """Per bus i: ``values`` at the node where i's and ``bus``'s paths to the source part
        (0 for buses of another tree)."""
        tree = self.tree
        node = int(tree.group[bus])
        per_node = np.zeros(tree.nodes)
        if tree.tin[node] < 0:
            return np.zeros(tree.buses)
        chain = [node]
        while tree.parent[chain[-1]] >= 0:
            chain.append(int(tree.parent[chain[-1]]))
        ancestors = np.asarray(chain[::-1], np.int64)  # source first
        starts, ends = tree.tin[ancestors], tree.tout[ancestors]
        at = values[ancestors]
        # In DFS order the ancestors' subtrees are nested intervals; a node takes the value of the
        # deepest ancestor whose interval holds it: piecewise constant over 2·depth + 1 pieces.
        bounds = np.concatenate([starts, ends[::-1]])
        pieces = np.concatenate([at, at[::-1][1:]])
        per_node[tree.euler[starts[0] : ends[0]]] = np.repeat(pieces, np.diff(bounds))
        return np.asarray(per_node[tree.group])

    def _in_tree(self, bus: int) -> bool:
        return bool(self.tree.tin[self.tree.group[bus]] >= 0)

    def voltage_row(self, bus: int) -> FloatArray:
        """d(u_pu of every bus)/d(W of extra load at ``bus``)."""
        if not self._in_tree(bus):
            return np.zeros(self.tree.buses)
        draw = 1.0 + self.lam[self.tree.group[bus]]
        return -self._by_lca(bus, draw * self.vcum - self.wcum)

    def voltage_column(self, bus: int) -> FloatArray:
        """d(u_pu of ``bus``)/d(W of extra load at every bus)."""
        if not self._in_tree(bus):
            return np.zeros(self.tree.buses)
        draw = 1.0 + self.lam[self.tree.group]
        inside = self.tree.tin[self.tree.group] >= 0
        return np.where(inside, -(draw * self._by_lca(bus, self.vcum) - self._by_lca(bus, self.wcum)), 0.0)

    def branch_row(self, bus: int) -> FloatArray:
        """d(loading % of every member branch)/d(W of extra load at ``bus``): those on its path."""
        tree = self.tree
        out = np.zeros(len(self.member_slope))
        edges = tree.path_edges(int(tree.group[bus]))
        if edges:
            members = np.concatenate([tree.edge_members[e] for e in edges])
            draw = 1.0 + self.lam[tree.group[bus]] - self.member_lam[members]
            out[members] = self.member_slope[members] * draw
        return out

    def branch_column(self, member: int) -> FloatArray:
        """d(loading % of branch ``member``)/d(W of extra load at every bus): nonzero below it."""
        tree = self.tree
        edge = tree.member_edge[member]
        if edge < 0 or tree.edge_child[edge] < 0:
            return np.zeros(tree.buses)
        draw = 1.0 + self.lam[tree.group] - self.member_lam[member]
        return np.where(tree.below(int(tree.edge_child[edge])), self.member_slope[member] * draw, 0.0)
