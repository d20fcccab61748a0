"""Power-flow validation of slots against the network's limits.

Two engines on the same schedules:

- ``BatchEngine``: power-grid-model, a C++ power-flow solver, for many slots at once (a batch of
  time steps in one call). The facilitator screens every slot with it.
- ``ac_check``: a full pandapower AC power flow (Newton-Raphson) of one slot: the last word.

A ``Schedule`` holds S slots: the grid's own loads and generators (the baseline, pandapower's
element order) and the market's extra power at each bus (``market_p_w``, load positive).
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from gridledger.encoding import to_hex
from gridledger.errors import NetworkError
from gridledger.network.model import FloatArray, NetworkModel
from gridledger.network.radial import BranchState, Linearisation, RadialTree
from gridledger.units import W_PER_MW


@dataclass(frozen=True)
class Schedule:
    """Power per slot (rows) and element (columns), in W and var; sgen generation positive."""

    load_p_w: FloatArray
    load_q_var: FloatArray
    sgen_p_w: FloatArray
    market_p_w: FloatArray  # extra load per bus of ``model.buses`` (negative = injection)

    @property
    def slots(self) -> int:
        return int(self.load_p_w.shape[0])

    def slot(self, s: int) -> Schedule:
        return Schedule(
            self.load_p_w[s : s + 1],
            self.load_q_var[s : s + 1],
            self.sgen_p_w[s : s + 1],
            self.market_p_w[s : s + 1],
        )


@dataclass(frozen=True)
class Violation:
    """One element outside its limit: which element, which limit, and by how much."""

    element: str  # "line", "trafo" or "bus"
    index: int
    name: str
    limit: str  # "max_loading_percent", "v_min_pu" or "v_max_pu"
    limit_value: float
    value: float

    @property
    def excess(self) -> float:
        return round(abs(self.value - self.limit_value), 6)

    def describe(self) -> str:
        unit = "%" if self.limit == "max_loading_percent" else " pu"
        return f"{self.element} {self.name}: {self.value:.4g}{unit} against {self.limit} {self.limit_value:g}{unit}"


@dataclass(frozen=True)
class SlotCheck:
    """The result of one slot's power flow: worst values and every violation."""

    engine: str
    max_line_loading_percent: float
    max_line: int
    max_trafo_loading_percent: float
    max_trafo: int
    v_min_pu: float
    v_min_bus: int
    v_max_pu: float
    v_max_bus: int
    violations: list[Violation] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.violations


def _check(
    model: NetworkModel,
    engine: str,
    line_loading: FloatArray,
    trafo_loading: FloatArray,
    vm: FloatArray,
) -> SlotCheck:
    """Builds a SlotCheck from one slot's results, in pandapower's element order."""
    net, limits = model.net, model.limits
    violations = []
    for element, loading, table in (("line", line_loading, net.line), ("trafo", trafo_loading, net.trafo)):
        for position in np.flatnonzero(loading > limits.max_loading_percent):
            index = int(table.index[position])
            violations.append(
                Violation(
                    element,
                    index,
                    str(table.at[index, "name"]),
                    "max_loading_percent",
                    limits.max_loading_percent,
                    round(float(loading[position]), 4),
                )
            )
    for position in np.flatnonzero((vm < limits.v_min_pu) | (vm > limits.v_max_pu)):
        index = int(net.bus.index[position])
        low = vm[position] < limits.v_min_pu
        violations.append(
            Violation(
                "bus",
                index,
                str(net.bus.at[index, "name"]),
                "v_min_pu" if low else "v_max_pu",
                limits.v_min_pu if low else limits.v_max_pu,
                round(float(vm[position]), 6),
            )
        )
    line = int(np.argmax(line_loading)) if len(line_loading) else 0
    trafo = int(np.argmax(trafo_loading)) if len(trafo_loading) else 0
    return SlotCheck(
        engine=engine,
        max_line_loading_percent=round(float(line_loading[line]), 4) if len(line_loading) else 0.0,
        max_line=int(net.line.index[line]) if len(line_loading) else -1,
        max_trafo_loading_percent=round(float(trafo_loading[trafo]), 4) if len(trafo_loading) else 0.0,
        max_trafo=int(net.trafo.index[trafo]) if len(trafo_loading) else -1,
        v_min_pu=round(float(vm.min()), 6),
        v_min_bus=int(net.bus.index[int(np.argmin(vm))]),
        v_max_pu=round(float(vm.max()), 6),
        v_max_bus=int(net.bus.index[int(np.argmax(vm))]),
        violations=violations,
    )


class BatchEngine:
    """power-grid-model on a network model: many slots per call.

    The model is converted and built once; every call sends only the loads' and generators'
    powers as update data (no rebuild per slot or per batch)."""

    def __init__(self, model: NetworkModel) -> None:
        from power_grid_model import ComponentType, DatasetType, PowerGridModel, initialize_array
        from power_grid_model_io.converters import PandaPowerConverter

        self.model = model
        net = model.net
        converter = PandaPowerConverter()
        try:
            data, _ = converter.load_input_data(net)
        except Exception as exc:
            raise NetworkError(f"cannot convert network {model.source} for power-grid-model: {exc}") from None
        ct = ComponentType
        self._load_ids = np.array([converter.get_id("load", int(i), "const_power") for i in net.load.index], int)
        self._sgen_ids = np.array([converter.get_id("sgen", int(i)) for i in net.sgen.index], int)
        self.node_rows = self._rows(data[ct.node]["id"], [converter.get_id("bus", int(b)) for b in net.bus.index])
        self.line_rows = self._rows(data[ct.line]["id"], [converter.get_id("line", int(i)) for i in net.line.index])
        self.trafo_rows = self._rows(
            data[ct.transformer]["id"], [converter.get_id("trafo", int(i)) for i in net.trafo.index]
        )
        # One extra load per bus carries the market's power.
        next_id = max(int(a["id"].max()) for a in data.values() if len(a)) + 1
        market = initialize_array(DatasetType.input, ct.sym_load, len(model.buses))
        market["id"] = np.arange(next_id, next_id + len(model.buses))
        market["node"] = [converter.get_id("bus", b) for b in model.buses]
        market["status"] = 1
        market["type"] = 0  # constant power
        market["p_specified"] = 0.0
        market["q_specified"] = 0.0
        data[ct.sym_load] = np.concatenate([data[ct.sym_load], market])
        self._market_ids = market["id"].copy()
        self.line_i_n = np.asarray(data[ct.line]["i_n"], float)
        self.trafo_sn = np.asarray(data[ct.transformer]["sn"], float)
        self._input = data
        self._pgm = PowerGridModel(data)
        self._ct, self._dt, self._init = ct, DatasetType, initialize_array

    @staticmethod
    def _rows(ids: Any, wanted: list[int]) -> np.ndarray:
        position = {int(i): row for row, i in enumerate(ids)}
        return np.array([position[w] for w in wanted], int)

    @cached_property
    def tree(self) -> RadialTree:
        """The network as operated (switches applied), as a tree from its source."""
        return RadialTree(self._input)

    def feeder_of(self, bus: int) -> frozenset[int]:
        """The buses under the transformer nearest above ``bus`` (on an MV/LV grid, its LV grid;
        on one LV grid, all of it); every bus if the network is not operated radially."""
        buses = self.model.buses
        if not self.tree.radial:
            return frozenset(buses)
        bus_of_node = {int(node): b for b, node in zip(buses, self.node_rows.tolist(), strict=True)}
        nodes = self.tree.feeder_of(int(self.node_rows[self.model.bus_position[bus]]))
        return frozenset(bus_of_node[int(n)] for n in nodes.tolist() if int(n) in bus_of_node)

    def run(self, schedule: Schedule) -> list[SlotCheck]:
        """Solves every slot of ``schedule``; one SlotCheck per slot."""
        vm, lines, trafos = self.solve(schedule)
        return [_check(self.model, "power-grid-model", lines[i], trafos[i], vm[i]) for i in range(schedule.slots)]

    def solve(self, schedule: Schedule) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Bus voltages (pu), line and transformer loadings (%) per slot, in pandapower's order."""
        ct = self._ct
        out = self._calculate(schedule, {ct.node: ["u_pu"], ct.line: ["loading"], ct.transformer: ["loading"]})
        vm = out[ct.node]["u_pu"][:, self.node_rows]
        lines = out[ct.line]["loading"][:, self.line_rows] * 100
        trafos = out[ct.transformer]["loading"][:, self.trafo_rows] * 100
        return vm, lines, trafos

    def solve_slot(self, schedule: Schedule) -> SolvedSlot:
        """The first slot of ``schedule`` with every flow: its check and what linear
        sensitivities are read from (``network.sensitivity``)."""
        ct = self._ct
        out = self._calculate(schedule.slot(0), {ct.node: None, ct.line: None, ct.transformer: None})
        node, line, trafo = out[ct.node][0], out[ct.line][0], out[ct.transformer][0]
        return SolvedSlot(
            engine=self,
            vm=np.asarray(node["u_pu"][self.node_rows], float),
            lines=np.asarray(line["loading"][self.line_rows] * 100, float),
            trafos=np.asarray(trafo["loading"][self.trafo_rows] * 100, float),
            node_u_pu=np.asarray(node["u_pu"], float),
            line_state=BranchState.of(line),
            trafo_state=BranchState.of(trafo),
        )

    def _calculate(self, schedule: Schedule, outputs: dict[Any, Any]) -> dict[Any, Any]:
        """One batch power flow of ``schedule``. Iterative current first (the same AC equations
        to the same 1e-8 tolerance as Newton-Raphson, and faster on radial grids); Newton-Raphson
        if it does not converge."""
        from power_grid_model import CalculationMethod

        ct, s = self._ct, schedule.slots
        loads = self._init(self._dt.update, ct.sym_load, (s, len(self._load_ids) + len(self._market_ids)))
        loads["id"] = np.concatenate([self._load_ids, self._market_ids])
        loads["p_specified"] = np.concatenate([schedule.load_p_w, schedule.market_p_w], axis=1)
        loads["q_specified"] = np.concatenate([schedule.load_q_var, np.zeros_like(schedule.market_p_w)], axis=1)
        gens = self._init(self._dt.update, ct.sym_gen, (s, len(self._sgen_ids)))
        gens["id"] = self._sgen_ids
        gens["p_specified"] = schedule.sgen_p_w
        gens["q_specified"] = 0.0
        update = {ct.sym_load: loads, ct.sym_gen: gens}
        try:
            return dict(
                self._pgm.calculate_power_flow(
                    update_data=update,
                    output_component_types=outputs,
                    max_iterations=30,
                    calculation_method=CalculationMethod.iterative_current,
                )
            )
        except Exception:
            pass
        try:
            return dict(
                self._pgm.calculate_power_flow(update_data=update, output_component_types=outputs, max_iterations=30)
            )
        except Exception as exc:
            raise NetworkError(f"power flow did not converge on {self.model.source}: {exc}") from None

    def check(self, solved: SolvedSlot) -> SlotCheck:
        """The slot check of a solved slot."""
        return _check(self.model, "power-grid-model", solved.lines, solved.trafos, solved.vm)


@dataclass(frozen=True)
class SolvedSlot:
    """One slot solved by the batch engine: pandapower-ordered results, and power-grid-model's
    own (node order, branch rows) for the linearisation."""

    engine: BatchEngine
    vm: FloatArray
    lines: FloatArray
    trafos: FloatArray
    node_u_pu: FloatArray
    line_state: BranchState
    trafo_state: BranchState

    @cached_property
    def linearisation(self) -> Linearisation:
        engine = self.engine
        return Linearisation.at(
            engine.tree, self.node_u_pu, self.line_state, self.trafo_state, i_n=engine.line_i_n, sn=engine.trafo_sn
        )


@dataclass(frozen=True)
class SlotFlows:
    """Every element's result of one slot's AC power flow, in pandapower's element order
    (``net.line``, ``net.trafo``, ``net.bus``): loading in %, voltage magnitude in pu."""

    line_loading_percent: FloatArray
    trafo_loading_percent: FloatArray
    vm_pu: FloatArray

    def check(self, model: NetworkModel) -> SlotCheck:
        return _check(model, "pandapower", self.line_loading_percent, self.trafo_loading_percent, self.vm_pu)


def ac_flows(model: NetworkModel, schedule: Schedule) -> SlotFlows:
    """A full pandapower AC power flow of the schedule's first slot: every line's and
    transformer's loading and every bus's voltage (copies: the net is reused by the next call)."""
    ac = _ac_net(model)
    net = ac.net
    # Whole columns: the model's loads, then one market load per bus (the order _AcNet made).
    net.load["p_mw"] = np.concatenate([schedule.load_p_w[0], schedule.market_p_w[0]]) / W_PER_MW
    net.load["q_mvar"] = np.concatenate([schedule.load_q_var[0], np.zeros(len(model.buses))]) / W_PER_MW
    net.sgen["p_mw"] = schedule.sgen_p_w[0] / W_PER_MW
    net.sgen["q_mvar"] = 0.0
    try:
        ac.run()
    except Exception as exc:
        ac.start = None  # the next call builds everything again
        raise NetworkError(f"AC power flow did not converge on {model.source}: {exc}") from None
    return SlotFlows(
        net.res_line.loading_percent.to_numpy(float).copy(),
        net.res_trafo.loading_percent.to_numpy(float).copy(),
        net.res_bus.vm_pu.to_numpy(float).copy(),
    )


def ac_check(model: NetworkModel, schedule: Schedule) -> SlotCheck:
    """A full pandapower AC power flow of the schedule's first slot, checked against the limits."""
    return ac_flows(model, schedule).check(model)


class _AcNet:
    """A copy of the model's net with one market load per bus appended, solved by pandapower's
    Newton-Raphson from the same start on every call, with what does not change between calls
    built once.

    Only the loads' and generators' powers change from call to call, so after the first call
    ``run`` does what ``runpp(recycle={"bus_pq": True})`` does (pandapower's time-series path:
    the bus injections are rebuilt into the stored internal case, whose admittance matrices are
    kept), except that it starts where ``runpp`` starts (the flat voltage magnitude and the DC
    power flow's angles) instead of at the previous result: the same iterations from the same
    start give the same result to the last bit (``tests/backend/network/test_ac_check.py``),
    in a third of the time (most of ``runpp`` is rebuilding the case from DataFrames).
    Closed line and transformer switches are dropped from the copy: they change nothing in the
    power flow, and their result tables cost a sixth of each call."""

    def __init__(self, model: NetworkModel) -> None:
        import pandapower

        net = copy.deepcopy(model.net)
        # One call for all buses: creating 5,479 loads one by one took most of a minute.
        pandapower.create_loads(net, buses=model.buses, p_mw=0.0, name=[f"market@{bus}" for bus in model.buses])
        net.load["scaling"] = 1.0
        net.sgen["scaling"] = 1.0
        net.switch = net.switch[~(net.switch.closed & net.switch.et.isin(["l", "t"]))]
        slacks = [net.ext_grid.vm_pu[net.ext_grid.in_service], net.gen.vm_pu[net.gen.in_service]]
        if "vsc" in net and len(net.vsc):
            slacks.append(net.vsc.control_value_ac[net.vsc.in_service & (net.vsc.control_mode_ac == "slack")])
        values = np.concatenate([s.to_numpy(float) for s in slacks])
        self.net = net
        # init_vm_pu: the flat start pandapower's "auto" computes with six DataFrame queries on
        # every call (a tenth of a second on a feeder), computed once: the same start, the same result.
        self.flat_vm_pu = float(values.sum() / len(values))
        self.start: tuple[FloatArray, FloatArray, dict[str, Any]] | None = None

    def run(self) -> None:
        import pandapower
        from pandapower.pd2ppc import _calc_pq_elements_and_add_on_ppc, _pd2ppc, _ppc2ppci
        from pandapower.pf.run_newton_raphson_pf import _run_newton_raphson_pf
        from pandapower.powerflow import _ppci_to_net
        from pandapower.pypower.idx_bus import VA, VM

        net = self.net
        if self.start is None:
            pandapower.runpp(net, max_iteration=30, init_vm_pu=self.flat_vm_pu)
            options = {k: net._options[k] for k in ("init_vm_pu", "init_va_degree")}
            _, ppci = _pd2ppc(net)  # the internal case as runpp builds it, before it iterates
            vm, va = ppci["bus"][:, VM].copy(), ppci["bus"][:, VA].copy()
            pandapower.runpp(net, max_iteration=30, init_vm_pu=self.flat_vm_pu)  # stores that case again
            self.start = (vm, va, options)
            return
        vm, va, start_options = self.start
        options = net._options
        options.update(start_options, recycle={"bus_pq": True, "trafo": False, "gen": False})
        ppc = net._ppc
        internal = ppc["internal"]
        ppci = {k: internal[k] for k in ("bus", "gen", "branch", "baseMVA")} | {"internal": internal}
        _calc_pq_elements_and_add_on_ppc(net, ppc)
        ppci = _ppc2ppci(ppc, net, ppci=ppci)
        ppci["internal"] = internal
        ppci["bus"][:, VM] = vm
        ppci["bus"][:, VA] = va
        result = _run_newton_raphson_pf(ppci, options)
        if not result["success"]:
            raise NetworkError(f"no convergence in {options['max_iteration']} iterations")
        _ppci_to_net(result, net)


def _ac_net(model: NetworkModel) -> _AcNet:
    """The model's AC net, kept on the model (a cache keyed by anything else could hand one
    model's net to another)."""
    cached = model.__dict__.get("_ac_net")
    if cached is None:
        cached = model.__dict__["_ac_net"] = _AcNet(model)
    return cached


@dataclass(frozen=True)
class NetworkReport:
    """What the facilitator publishes for a slot: the check the cleared result passed."""

    delivery_start: int
    network: str
    model_version: str
    limits: dict[str, float]
    check: SlotCheck
    curtailments: list[dict[str, Any]] = field(default_factory=list)
    # How to rebuild the slot's baseline: e.g. {"grid": ..., "day": 173, "slot": 48, "replaced_loads": [...]}
    baseline: dict[str, Any] = field(default_factory=dict)
    # When contracted flexibility could be activated: the candidates, the choice and why.
    flexibility: dict[str, Any] = field(default_factory=dict)

    def canonical(self) -> bytes:
        """Sorted-key JSON: the bytes whose hash goes on-chain (no ``flexibility`` key if none was
        available, so such reports read as before)."""
        data = asdict(self)
        if not data["flexibility"]:
            del data["flexibility"]
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()

    @cached_property
    def hash(self) -> bytes:
        from eth_utils.crypto import keccak

        return bytes(keccak(self.canonical()))


def report_for(
    model: NetworkModel,
    delivery_start: int,
    check: SlotCheck,
    curtailments: list[dict[str, Any]] | None = None,
    baseline: dict[str, Any] | None = None,
    flexibility: dict[str, Any] | None = None,
) -> NetworkReport:
    return NetworkReport(
        delivery_start=delivery_start,
        network=model.source,
        model_version=to_hex(model.version),
        limits=asdict(model.limits),
        check=check,
        curtailments=curtailments or [],
        baseline=baseline or {},
        flexibility=flexibility or {},
    )
