"""The operated network as a tree, and linear sensitivities read off one solved power flow.

Distribution networks are operated radially: with the open switches open, every bus has one path
to the supply. On that tree, extra load of δ W at bus j changes, to first order:

- the power through every branch on j's path to the supply by δ (plus the losses it adds on
  the way), and nothing else;
- the voltage of every bus i by about −δ·Σ R/(U·U_n²) over the branches that i's and j's paths
  share (the drop R·P/U of each shared branch grows; R in Ω, U the per-unit voltage at the
  branch's far end, U_n its nominal voltage, so the sum is in per unit per W), amplified on the
  way down to i because every drop grows as the voltage falls.

So a branch's loading reacts only to load below it, and a bus voltage to the cumulative
resistance down to the point where the two paths part: O(buses) for a row or a column of the
sensitivity matrix instead of one power flow per bus. The extra losses the added flow causes
below each branch (2·R·P/U² per W through each branch, with the solved flows) and the drops'
growth as voltages fall are included to first order, and the loading slopes use the solved
flows as a 1 kW finite difference would (|S| with the probe added, a line's current growing as
its voltage falls);
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


def _bus_groups(links: Any, index: Mapping[int, int], n: int) -> IntArray:
    """Per bus, its group: buses joined by closed links (bus-bar couplers) are one (union-find)."""
    root = list(range(n))

    def find(x: int) -> int:
        while root[x] != x:
            root[x] = root[root[x]]
            x = root[x]
        return x

    for row in _closed(links).tolist():
        root[find(index[int(links["from_node"][row])])] = find(index[int(links["to_node"][row])])
    _, group = np.unique(np.array([find(x) for x in range(n)], np.int64), return_inverse=True)
    return np.asarray(group, np.int64)


@dataclass(frozen=True)
class _Walk:
    """A depth-first walk of the nodes from the sources: the tree it finds and why it is not one."""

    parent: IntArray
    parent_edge: IntArray
    tin: IntArray  # position of each node in ``euler``; its subtree is euler[tin:tout]
    tout: IntArray
    euler: IntArray  # the nodes in the order first reached (parents before children)
    edge_child: IntArray
    edge_parent: IntArray
    reason: str


def _depth_first(nodes: int, edge_ends: list[tuple[int, int]], roots: list[int]) -> _Walk:
    adjacency: list[list[int]] = [[] for _ in range(nodes)]
    for e, (x, y) in enumerate(edge_ends):
        adjacency[x].append(e)
        adjacency[y].append(e)
    parent, parent_edge = np.full(nodes, -1, np.int64), np.full(nodes, -1, np.int64)
    tin, tout = np.full(nodes, -1, np.int64), np.full(nodes, -1, np.int64)
    edge_child, edge_parent = np.full(len(edge_ends), -1, np.int64), np.full(len(edge_ends), -1, np.int64)
    euler: list[int] = []
    seen = np.zeros(nodes, bool)
    reason = ""
    for top in roots:
        if seen[top]:
            reason = reason or "two sources feed one part of it"
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
                    reason = reason or "it has a loop (a closed ring or meshed branches)"
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
    return _Walk(parent, parent_edge, tin, tout, np.asarray(euler, np.int64), edge_child, edge_parent, reason)


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

        self.group = _bus_groups(data.get("link"), index, n)  # bus → tree node
        g = int(self.group.max()) + 1 if n else 0
        self.nodes = g

        # Members: closed lines and transformers, with their ends as tree nodes.
        kind_parts, row_parts, a_parts, b_parts, rho_parts, xi_parts = [], [], [], [], [], []
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
                xi_parts.append(np.asarray(table["x1"][closed], dtype=np.float64) / un2)  # X/U_n², 1/var
            else:
                # R referred to a side of nominal voltage U_n is (pk/sn)·U_n²/sn: over U_n², pk/sn².
                sn = np.asarray(table["sn"][closed], dtype=np.float64)
                r_pu = np.asarray(table["pk"][closed], dtype=np.float64) / sn
                rho_parts.append(r_pu / sn)
                uk = np.asarray(table["uk"][closed], dtype=np.float64)
                xi_parts.append(np.sqrt(np.maximum(uk**2 - r_pu**2, 0.0)) / sn)
        cat = np.concatenate
        self.member_kind = cat(kind_parts) if kind_parts else np.zeros(0, np.int64)
        self.member_row = cat(row_parts) if row_parts else np.zeros(0, np.int64)
        self.member_from = cat(a_parts) if a_parts else np.zeros(0, np.int64)  # buses, as power-grid-model orients
        self.member_to = cat(b_parts) if b_parts else np.zeros(0, np.int64)
        member_z = (cat(rho_parts) + 1j * cat(xi_parts)) if rho_parts else np.zeros(0, complex)

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
        edge_z = np.zeros(len(edge_ends), complex)
        for e, key in enumerate(edge_ends):
            members = np.asarray(pairs[key], np.int64)
            self.member_edge[members] = e
            z = member_z[members]
            if np.all(np.abs(z) > 0):
                admittance = 1.0 / z
                self.member_share[members] = np.abs(admittance) / np.abs(admittance).sum()
                edge_z[e] = 1.0 / admittance.sum()  # parallel branches: one impedance
            else:  # a zero-impedance branch carries it all
                self.member_share[members] = (np.abs(z) == 0) / np.sum(np.abs(z) == 0)
        self.edge_rho = edge_z.real  # R/U_n² of each edge, 1/W
        self.edge_xi = edge_z.imag  # X/U_n², 1/var

        sources = data.get("source")
        tree_roots: list[int] = []
        if sources is not None and len(sources):
            tree_roots = sorted({int(self.group[index[int(x)]]) for x in sources["node"][sources["status"] == 1]})
        walk = _depth_first(g, edge_ends, tree_roots)
        self.reason = self.reason or walk.reason
        self.radial = not self.reason
        self.parent, self.parent_edge, self.tin, self.tout = walk.parent, walk.parent_edge, walk.tin, walk.tout
        self.euler = walk.euler
        # The nodes below the sources, grouped by depth (1, 2, …): what a top-down pass takes at once.
        depth = np.zeros(g, np.int64)
        for node in walk.euler.tolist():  # parents come before their children
            if walk.parent[node] >= 0:
                depth[node] = depth[walk.parent[node]] + 1
        below_sources = walk.euler[depth[walk.euler] > 0]
        by_depth = below_sources[np.argsort(depth[below_sources], kind="stable")]
        cuts = np.flatnonzero(np.diff(depth[by_depth])) + 1
        self.levels: list[IntArray] = (
            [np.asarray(a, np.int64) for a in np.split(by_depth, cuts)] if len(by_depth) else []
        )
        self.edge_child, self.edge_parent = walk.edge_child, walk.edge_parent
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

    Per edge, with r, x its R and X over U_n², P, Q its solved flow into its child and u, u_p
    the child's and the parent's voltages (pu): each extra W through it adds λ = 2·r·P/u² W and
    μ = 2·x·P/u² var of losses; and from u_p² = (u + a/u)² + (b/u)² (a = r·P + x·Q,
    b = x·P − r·Q, the exact drop of a series impedance feeding P + jQ) the child's voltage moves
    by g·du_p − cP·dP − cQ·dQ. Cumulated from the source down to each tree node n: ``lam`` Σλ,
    ``mu`` Σμ, ``gain`` Πg (every drop grows as the voltage falls, so a change at an edge's top
    arrives amplified at its bottom), ``vcum`` Σ cP/gain(child), ``xcum`` Σ cQ/gain(child),
    ``wcum`` Σ cP·lam(child)/gain(child) and ``ycum`` Σ cQ·mu(child)/gain(child).

    Extra load δ at bus j then draws δ·(1 + lam[j] − lam[c]) W and δ·(mu[j] − mu[c]) var through
    an edge with child c on j's path, and moves bus i's voltage by
    −δ·gain[i]·((1 + lam[j])·vcum[L] − wcum[L] + mu[j]·xcum[L] − ycum[L]), L the node where i's
    and j's paths part."""

    tree: RadialTree
    lam: FloatArray
    mu: FloatArray
    gain: FloatArray
    vcum: FloatArray
    wcum: FloatArray
    xcum: FloatArray
    ycum: FloatArray
    slope_p: FloatArray  # per member branch: loading (%) per W drawn through its measured end
    slope_q: FloatArray  # … and per var
    member_lam: FloatArray  # lam and mu at the node of the member's measured end
    member_mu: FloatArray

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
        edge_up = np.ones(len(tree.edge_rho))
        edge_up[in_tree] = u_node[tree.edge_parent[in_tree]]

        # Each edge's flow into its child: minus what its members take in at the child's end.
        members = np.flatnonzero(tree.member_edge >= 0)
        members = members[in_tree[tree.member_edge[members]]]
        parent_node = tree.edge_parent[tree.member_edge[members]]
        from_is_parent = tree.group[tree.member_from[members]] == parent_node
        edge_p, edge_q = np.zeros(len(tree.edge_rho)), np.zeros(len(tree.edge_rho))
        sides: dict[int, tuple[IntArray, BranchState]] = {}
        for kind, state in ((LINE, lines), (TRANSFORMER, trafos)):
            mine = tree.member_kind[members] == kind
            rows = tree.member_row[members[mine]]
            np.add.at(
                edge_p,
                tree.member_edge[members[mine]],
                -np.where(from_is_parent[mine], state.p_to[rows], state.p_from[rows]),
            )
            np.add.at(
                edge_q,
                tree.member_edge[members[mine]],
                -np.where(from_is_parent[mine], state.q_to[rows], state.q_from[rows]),
            )
            sides[kind] = (members[mine], state)
        r, x, u, up = tree.edge_rho, tree.edge_xi, edge_u, edge_up
        edge_lam = np.where(in_tree, 2.0 * r * edge_p / u**2, 0.0)
        edge_mu = np.where(in_tree, 2.0 * x * edge_p / u**2, 0.0)
        a, b = r * edge_p + x * edge_q, x * edge_p - r * edge_q
        k = (u + a / u) * (1.0 - a / u**2) - b**2 / u**3
        edge_g = np.where(in_tree, up / k, 1.0)
        c_p = np.where(in_tree, ((1.0 + a / u**2) * r + (b / u**2) * x) / k, 0.0)
        c_q = np.where(in_tree, ((1.0 + a / u**2) * x - (b / u**2) * r) / k, 0.0)

        n = tree.nodes
        lam, mu, gain = np.zeros(n), np.zeros(n), np.ones(n)
        vcum, wcum, xcum, ycum = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
        parent, parent_edge = tree.parent, tree.parent_edge
        for level in tree.levels:  # a depth at a time: the level above is done
            e, top = parent_edge[level], parent[level]
            lam[level] = lam[top] + edge_lam[e]
            mu[level] = mu[top] + edge_mu[e]
            gain[level] = gain[top] * edge_g[e]
            vcum[level] = vcum[top] + c_p[e] / gain[level]
            wcum[level] = wcum[top] + c_p[e] * lam[level] / gain[level]
            xcum[level] = xcum[top] + c_q[e] / gain[level]
            ycum[level] = ycum[top] + c_q[e] * mu[level] / gain[level]

        slope_p, slope_q = np.zeros(len(tree.member_kind)), np.zeros(len(tree.member_kind))
        member_lam, member_mu = np.zeros(len(tree.member_kind)), np.zeros(len(tree.member_kind))
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
            p_down, q_down = np.where(at_parent, p, -p), np.where(at_parent, q, -q)  # towards the child
            share = tree.member_share[chosen]
            s_now = np.hypot(p_down, q_down)
            growth_p = (np.hypot(p_down + share * PROBE_W, q_down) - s_now) / PROBE_W  # d|S|/dP
            growth_q = share * q_down / np.maximum(s_now, PROBE_W)  # d|S|/dQ
            if kind == LINE:
                u_side = u_bus[side_bus]
                rated = np.sqrt(3.0) * u_side * tree.u_rated[side_bus] * rating[row]
                # A line's loading is its current |S|/(√3·U): it also grows as U falls.
                falls = gain[side_node] * vcum[side_node] / u_side
                slope_p[chosen] = 100.0 * (growth_p / rated + state.loading[row] * falls)
            else:
                rated = rating[row]
                slope_p[chosen] = 100.0 * growth_p / rated
            slope_q[chosen] = 100.0 * growth_q / rated
            member_lam[chosen], member_mu[chosen] = lam[side_node], mu[side_node]
        return cls(tree, lam, mu, gain, vcum, wcum, xcum, ycum, slope_p, slope_q, member_lam, member_mu)

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
        node = self.tree.group[bus]
        lam, mu = self.lam[node], self.mu[node]
        at_lca = self._by_lca(bus, (1.0 + lam) * self.vcum - self.wcum + mu * self.xcum - self.ycum)
        return np.asarray(-self.gain[self.tree.group] * at_lca)

    def voltage_column(self, bus: int) -> FloatArray:
        """d(u_pu of ``bus``)/d(W of extra load at every bus)."""
        if not self._in_tree(bus):
            return np.zeros(self.tree.buses)
        tree = self.tree
        lam, mu = self.lam[tree.group], self.mu[tree.group]
        vcum, wcum, xcum, ycum = (self._by_lca(bus, a) for a in (self.vcum, self.wcum, self.xcum, self.ycum))
        inside = tree.tin[tree.group] >= 0
        moved = (1.0 + lam) * vcum - wcum + mu * xcum - ycum
        return np.where(inside, -self.gain[tree.group[bus]] * moved, 0.0)

    def _draw(self, members: IntArray | int, lam: FloatArray | float, mu: FloatArray | float) -> FloatArray:
        """Loading change of ``members`` per W of extra load where lam and mu are as given."""
        return np.asarray(
            self.slope_p[members] * (1.0 + lam - self.member_lam[members])
            + self.slope_q[members] * (mu - self.member_mu[members])
        )

    def branch_row(self, bus: int) -> FloatArray:
        """d(loading % of every member branch)/d(W of extra load at ``bus``): those on its path."""
        tree = self.tree
        out = np.zeros(len(self.slope_p))
        node = int(tree.group[bus])
        edges = tree.path_edges(node)
        if edges:
            members = np.concatenate([tree.edge_members[e] for e in edges])
            out[members] = self._draw(members, self.lam[node], self.mu[node])
        return out

    def branch_column(self, member: int) -> FloatArray:
        """d(loading % of branch ``member``)/d(W of extra load at every bus): nonzero below it."""
        tree = self.tree
        edge = tree.member_edge[member]
        if edge < 0 or tree.edge_child[edge] < 0:
            return np.zeros(tree.buses)
        draw = self._draw(member, self.lam[tree.group], self.mu[tree.group])
        return np.where(tree.below(int(tree.edge_child[edge])), draw, 0.0)
