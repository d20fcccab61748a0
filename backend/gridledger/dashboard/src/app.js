// The GridLedger dashboard: reads the facilitator's API, listens to its server-sent events, and
// signs a prosumer's orders and cancellations in the page with the market's EIP-712 domain.
import uPlot from "uplot";
import { hashTypedData } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

const TOKEN = 1e6; // the settlement token's base units (6 decimals)
// The same struct types as gridledger.market.orders (ORDER_TYPES, CANCELLATION_TYPES).
const ORDER_TYPES = {
  Order: [
    { name: "prosumer", type: "address" },
    { name: "side", type: "uint8" },
    { name: "deliveryStart", type: "uint40" },
    { name: "energyWh", type: "uint32" },
    { name: "pricePerKWh", type: "uint64" },
    { name: "nonce", type: "uint64" },
    { name: "expiry", type: "uint40" },
  ],
};
const CANCELLATION_TYPES = { Cancellation: [{ name: "orderHash", type: "bytes32" }] };
const DOMAIN_TYPE = [
  { name: "name", type: "string" },
  { name: "version", type: "string" },
  { name: "chainId", type: "uint256" },
  { name: "verifyingContract", type: "address" },
];
const KEY_STORE = "gridledger.key";

const $ = (sel) => document.querySelector(sel);
const state = { version: null, health: null, slots: [], grid: null, signer: null, view: "market" };

// ─────────────── formatting: units, the user's time zone, UTC on hover ───────────────

const nf = (digits) => new Intl.NumberFormat(undefined, { maximumFractionDigits: digits, minimumFractionDigits: 0 });
const kWh = (wh) => (wh == null ? "–" : `${nf(3).format(wh / 1000)} kWh`);
const kW = (w) => `${nf(3).format(w / 1000)} kW`;
const tokens = (base) => (base == null ? "–" : `${nf(6).format(base / TOKEN)} tokens`);
const perKWh = (base) => (base == null ? "–" : `${(base / TOKEN).toFixed(4)} tokens/kWh`);
const pct = (value) => `${nf(1).format(value)} %`;
const pu = (value) => `${value.toFixed(3)} pu`;
const localTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
function when(unix) {
  if (unix == null) return "–";
  const date = new Date(unix * 1000);
  const utc = date.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  return `<time datetime="${date.toISOString()}" title="${utc}">${localTime.format(date)}</time>`;
}
const esc = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const short = (hex) => `<span class="hash" title="${esc(hex)}">${esc(hex.slice(0, 10))}…</span>`;

function table(headers, rows, empty) {
  if (!rows.length) return `<p class="muted">${empty}</p>`;
  const head = headers.map((h) => `<th>${h}</th>`).join("");
  return `<table><thead><tr>${head}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
}

// ─────────────── errors in words ───────────────

class ApiError extends Error {}

function showError(error) {
  const box = $("#error");
  box.textContent = error instanceof ApiError ? error.message : `Something went wrong in the page: ${error.message ?? error}`;
  box.hidden = false;
}
const clearError = () => { $("#error").hidden = true; };

async function api(path, { method = "GET", body, allow404 = false } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body ? { "content-type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (e) {
    throw new ApiError(`Cannot reach the GridLedger service (${method} ${path}): is \`gridledger serve\` running?`);
  }
  if (allow404 && response.status === 404) return null;
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON: reported below */ }
  if (!response.ok) {
    const detail = json?.detail ?? text ?? response.statusText;
    throw new ApiError(`The service refused ${method} ${path} (HTTP ${response.status}): ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
  }
  return json;
}

// ─────────────── views ───────────────

async function refreshCommon() {
  [state.version, state.health, state.slots] = await Promise.all([api("/version"), api("/health"), api("/market/slots?limit=96")]);
}

function slotOptions(select, slots, keep) {
  const current = keep ?? select.value;
  select.innerHTML = slots.map((s) => `<option value="${s.delivery_start}">${localTime.format(new Date(s.delivery_start * 1000))} · ${s.status}</option>`).join("");
  if (slots.some((s) => String(s.delivery_start) === String(current))) select.value = current;
}

let priceChart = null;
async function showMarket() {
  await showClock();
  const slots = state.slots;
  $("#slots tbody").innerHTML = slots.map((s) => `<tr data-slot="${s.delivery_start}">
    <td>${when(s.delivery_start)}</td><td>${when(s.gate_closure)}</td><td>${s.status}</td><td>${s.orders}</td>
    <td>${kWh(s.bid_wh)}</td><td>${kWh(s.ask_wh)}</td><td>${perKWh(s.clearing_price_per_kwh)}</td>
    <td>${kWh(s.traded_wh)}</td><td>${kWh(s.curtailed_wh)}</td></tr>`).join("")
    || `<tr><td colspan="9" class="muted">No slot has orders yet.</td></tr>`;
  const cleared = slots.filter((s) => s.status !== "open").reverse();
  $("#price-empty").hidden = cleared.length > 0;
  const data = [cleared.map((s) => s.delivery_start), cleared.map((s) => s.clearing_price_per_kwh / TOKEN), cleared.map((s) => s.traded_wh / 1000)];
  const width = Math.max(280, $("#price-chart").clientWidth || 600);
  if (priceChart) priceChart.destroy();
  priceChart = cleared.length ? new uPlot({
    width, height: 220,
    // a slot either side, so that one cleared slot is a point in a readable window, not a year
    scales: { x: { time: true, auto: false, range: [data[0][0] - state.version.slot_seconds, data[0][data[0].length - 1] + state.version.slot_seconds] },
      p: { range: (u, min, max) => [0, Math.max(max * 1.2, 0.01)] }, e: { range: (u, min, max) => [0, Math.max(max * 1.6, 0.01)] } }, // kept apart from the price points
    series: [{}, { label: "price (tokens/kWh)", stroke: "#1d5fa8", scale: "p", points: { show: true, size: 8 } },
      { label: "traded (kWh)", stroke: "#d9822b", scale: "e", points: { show: true, size: 8 } }],
    axes: [{}, { scale: "p", label: "tokens/kWh" }, { scale: "e", side: 1, label: "kWh", grid: { show: false } }],
  }, data, $("#price-chart")) : null;
  slotOptions($("#book-slot"), slots);
  await showBook();
}

async function showClock() {
  const clock = await api("/clock", { allow404: true });
  const chain = `Chain time ${when(state.health.chain_time)}; gates close ${state.version.gate_closure_seconds / 60} min before each ${state.version.slot_seconds / 60}-min slot.`;
  if (!clock) {
    $("#clock-body").innerHTML = `<p><strong>No market clock:</strong> this service clears and settles only when the facilitator asks.</p><p class="muted">${chain}</p>`;
    return;
  }
  // GET /clock (service/clock.py): slots as unix seconds, readings still missing per slot
  const missing = (clock.missing_readings || []).map((m) =>
    `<li>${when(m.delivery_start)}: ${m.accounts.length} account${m.accounts.length === 1 ? "" : "s"}${m.late ? ` — <strong>late</strong> (due ${when(m.due)})` : ` (due ${when(m.due)})`}</li>`).join("");
  $("#clock-body").innerHTML = `<dl class="facts">
    <dt>Clock</dt><dd>${clock.running ? esc(clock.mode) : "stopped"}</dd>
    <dt>Now</dt><dd>${when(clock.now)}</dd><dt>Current slot</dt><dd>${when(clock.current_slot)}</dd>
    <dt>Next gate closure</dt><dd>${when(clock.next_gate_closure)} (in ${Math.max(0, Math.round(clock.next_gate_closure - clock.now))} s)</dd>
    <dt>Seconds per slot</dt><dd>${clock.seconds_per_slot} s</dd>
    <dt>Last cleared</dt><dd>${when(clock.last_cleared_slot)}</dd><dt>Last settled</dt><dd>${when(clock.last_settled_slot)}</dd>
    <dt>Missing readings</dt><dd>${missing ? `<ul>${missing}</ul>` : "none"}</dd>
    ${clock.last_error ? `<dt>Last error</dt><dd class="error-text">${esc(clock.last_error)}</dd>` : ""}</dl><p class="muted">${chain}</p>`;
}

async function showBook() {
  const ds = $("#book-slot").value;
  if (!ds) { $("#book").innerHTML = `<p class="muted">No slot has orders yet.</p>`; return; }
  const book = await api(`/slots/${ds}/book`);
  const side = (title, levels) => `<div><h3>${title}</h3>${table(["Price", "Energy", "Orders", "Cumulative"],
    levels.map((l) => [perKWh(l.price_per_kwh), kWh(l.energy_wh), l.orders, kWh(l.cumulative_wh)]), `No open ${title.toLowerCase()}.`)}</div>`;
  $("#book").innerHTML = side("Bids", book.bids) + side("Offers", book.asks)
    + `<p class="muted">Gate closes ${when(book.gate_closure)}; ${book.awaiting_relay} accepted order(s) not yet on the ledger.</p>`;
}

async function showNetwork() {
  state.grid ??= await api("/network/grid");
  const cleared = state.slots.filter((s) => s.status !== "open");
  slotOptions($("#network-slot"), cleared);
  const grid = state.grid;
  $("#grid-caption").textContent = `${grid.network_model}: ${grid.buses.length} buses, ${grid.lines.length} lines, ${grid.trafos.length} transformers; ${grid.geodata ? "SimBench geodata" : "schematic (the model has no geodata)"}. Limits: loading ≤ ${pct(grid.limits.max_loading_percent)}, voltage ${grid.limits.v_min_pu}–${grid.limits.v_max_pu} pu.`;
  const ds = $("#network-slot").value;
  // The flows can be refused (409: the stored report is not the one on-chain) while the report is
  // still worth showing: the refusal goes into the summary, in the service's words.
  const [report, flowsOrError] = ds ? await Promise.all([api(`/slots/${ds}/network-report`),
    api(`/network/slots/${ds}/flows`).catch((e) => { if (e instanceof ApiError) return e; throw e; })]) : [null, null];
  const flows = flowsOrError instanceof ApiError ? null : flowsOrError;
  drawGrid(grid, report?.report, flows);
  const check = report?.report.check;
  $("#network-summary").innerHTML = !report ? `<dt>Slot</dt><dd>No slot has been cleared yet: nothing was checked.</dd>` : `
    <dt>Check</dt><dd class="${report.passed ? "ok" : "bad"}">${report.passed ? "passed" : "violations left"}</dd>
    <dt>Worst line loading</dt><dd id="worst-line">${pct(check.max_line_loading_percent)} (line ${esc(nameOf(grid.lines, check.max_line))})</dd>
    <dt>Worst transformer loading</dt><dd id="worst-trafo">${pct(check.max_trafo_loading_percent)} (${esc(nameOf(grid.trafos, check.max_trafo))})</dd>
    <dt>Lowest voltage</dt><dd>${pu(check.v_min_pu)} at ${esc(nameOf(grid.buses, check.v_min_bus))}</dd>
    <dt>Highest voltage</dt><dd>${pu(check.v_max_pu)} at ${esc(nameOf(grid.buses, check.v_max_bus))}</dd>
    <dt>Curtailed</dt><dd>${kWh(report.curtailed_wh)}</dd>
    <dt>Report hash (on-chain)</dt><dd>${short(report.report_hash)}</dd>
    <dt>Every element</dt><dd id="flows-note">${!flows ? `<span class="bad">${esc(flowsOrError.message)}</span>` : flows.matches_report
      ? "re-run from the published model, the slot's baseline, the orders on the chain and the report's curtailments: its worst values are the report's"
      : `<span class="bad">re-run from public facts, but its worst values differ from the report's</span>`}</dd>`;
  const violations = check?.violations ?? [];
  $("#violations").innerHTML = table(["Element", "Limit", "Value", "Allowed"], violations.map((v) =>
    [`${esc(v.element)} ${esc(v.name)}`, esc(v.limit), v.limit === "max_loading_percent" ? pct(v.value) : pu(v.value), v.limit === "max_loading_percent" ? pct(v.limit_value) : pu(v.limit_value)]),
    report ? "None: every line and transformer within its loading limit, every bus inside the voltage band." : "No slot checked yet.");
  const curtailments = flows?.curtailments ?? report?.report.curtailments ?? [];
  $("#curtailments").innerHTML = table(["Order", "Prosumer", "Side", "Bus", "Traded", "Curtailed", "Why"], curtailments.map((c) =>
    [short(c.order_hash), short(c.prosumer), esc(c.side), esc(nameOf(grid.buses, c.bus)), kWh(c.filled_wh), kWh(c.curtailed_wh),
      `<span class="text">${(c.reasons ?? []).map((r) => esc(reason(r))).join("; ")}</span>`]),
    report ? "No trade was curtailed in this slot." : "No slot checked yet.");
}

const nameOf = (items, index) => items.find((i) => i.index === index)?.name ?? `#${index}`;
function reason(r) {
  if (r.rule) return `${r.rule} (${r.choice ?? ""})`; // the joint clearing of trades and flexibility
  const [show, limit] = r.limit === "max_loading_percent" ? [pct, "loading limit"] : [pu, r.limit === "v_min_pu" ? "lowest voltage allowed" : "highest voltage allowed"];
  return `${r.element ?? ""} ${r.name ?? ""} at ${show(r.value)} against its ${limit} of ${show(r.limit_value)}`.trim();
}

// Colour bins with their legend: loading of lines and transformers, bus voltage against the band.
const LOADING_BINS = [[25, "#81c784", "up to 25 %"], [50, "#2e7d32", "25–50 %"], [80, "#c0ca33", "50–80 %"], [100, "#ef6c00", "80–100 %"], [Infinity, "#c62828", "above 100 % (overloaded)"]];
const loadingColour = (value) => LOADING_BINS.find(([upTo]) => value <= upTo)[1];
function voltageBins(limits) {
  const band = (a, b) => `${pu(a)}–${pu(b)}`;
  return [[limits.v_min_pu, "#c62828", `below ${pu(limits.v_min_pu)} (outside the band)`], [0.95, "#ef6c00", band(limits.v_min_pu, 0.95)],
    [0.98, "#c0ca33", band(0.95, 0.98)], [1.02, "#2e7d32", band(0.98, 1.02)], [1.05, "#64b5f6", band(1.02, 1.05)],
    [limits.v_max_pu, "#1565c0", band(1.05, limits.v_max_pu)], [Infinity, "#6a1b9a", `above ${pu(limits.v_max_pu)} (outside the band)`]];
}
const voltageColour = (bins, value) => bins.find(([upTo], i) => (i === 0 ? value < upTo : value <= upTo))[1];

function drawGrid(grid, report, flows) {
  const xs = grid.buses.map((b) => b.x), ys = grid.buses.map((b) => b.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const W = 1000, H = 600, m = 20;
  const sx = (x) => m + ((x - x0) / (x1 - x0 || 1)) * (W - 2 * m);
  const sy = (y) => (grid.geodata ? H - m - ((y - y0) / (y1 - y0 || 1)) * (H - 2 * m) : m + ((y - y0) / (y1 - y0 || 1)) * (H - 2 * m));
  const at = Object.fromEntries(grid.buses.map((b) => [b.index, [sx(b.x), sy(b.y)]]));
  const check = report?.check;
  const bad = new Set((check?.violations ?? []).map((v) => `${v.element}:${v.index}`));
  // GET /network/slots/{ds}/flows: every element's value of the chosen slot (none before a slot is cleared)
  const loading = { line: new Map((flows?.lines ?? []).map((e) => [e.index, e.loading_percent])), trafo: new Map((flows?.trafos ?? []).map((e) => [e.index, e.loading_percent])) };
  const voltage = new Map((flows?.buses ?? []).map((b) => [b.index, b.vm_pu]));
  const vBins = voltageBins(grid.limits);
  const curtailedAt = new Set((flows?.curtailments ?? []).map((c) => c.bus));
  const edge = (kind, e, a, b, width) => {
    const value = loading[kind].get(e.index);
    const worst = check && ((kind === "line" && e.index === check.max_line) || (kind === "trafo" && e.index === check.max_trafo));
    const colour = value != null ? loadingColour(value) : kind === "trafo" ? "#555" : "#8aa4c0";
    const title = `${kind === "line" ? "line" : "transformer"} ${esc(e.name)}${value != null ? `: ${pct(value)} loading` : ""}${worst ? " (the slot's worst)" : ""}${bad.has(`${kind}:${e.index}`) ? " — above its limit" : ""}`;
    return `<line class="${kind}" data-index="${e.index}" x1="${at[a][0]}" y1="${at[a][1]}" x2="${at[b][0]}" y2="${at[b][1]}" stroke="${colour}" stroke-width="${worst ? width * 2 : width}"><title>${title}</title></line>`;
  };
  const participants = new Set(grid.participant_buses);
  const svg = [
    ...grid.lines.map((l) => edge("line", l, l.from_bus, l.to_bus, 2.5)),
    ...grid.trafos.map((t) => edge("trafo", t, t.hv_bus, t.lv_bus, 5)),
    ...grid.buses.map((b) => {
      const value = voltage.get(b.index);
      const fill = value != null ? voltageColour(vBins, value) : "#13314f";
      const notes = [participants.has(b.index) ? "a participant's connection" : "", curtailedAt.has(b.index) ? "a trade curtailed here" : ""].filter(Boolean);
      const title = `bus ${esc(b.name)} (${b.vn_kv} kV)${value != null ? `: ${pu(value)}` : ""}${notes.length ? ` — ${notes.join(", ")}` : ""}`;
      const ring = participants.has(b.index) ? ` stroke="#13314f" stroke-width="2"` : "";
      return `<circle class="bus" data-index="${b.index}" cx="${at[b.index][0]}" cy="${at[b.index][1]}" r="${participants.has(b.index) || curtailedAt.has(b.index) ? 6 : 4}" fill="${fill}"${ring}><title>${title}</title></circle>`;
    }),
  ];
  const key = (colour, text, round) => `<li><span class="swatch${round ? " round" : ""}" style="background:${colour}"></span>${text}</li>`;
  const legend = flows ? `<div class="legend" id="grid-legend">
      <div><strong>Line and transformer loading</strong> (% of rating)<ul>${LOADING_BINS.map(([, c, t]) => key(c, t)).join("")}</ul></div>
      <div><strong>Bus voltage</strong> (pu of nominal; allowed ${pu(grid.limits.v_min_pu)}–${pu(grid.limits.v_max_pu)})<ul>${vBins.map(([, c, t]) => key(c, t, true)).join("")}</ul></div>
    </div><p class="muted">Hover over a line, transformer or bus for its value. Thick: the slot's worst line and transformer. Ringed: buses with a participant.</p>`
    : `<p class="muted">Choose a cleared slot to colour the grid by its loadings and voltages. Ringed: buses with a participant.</p>`;
  $("#grid-svg").innerHTML = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="the grid">${svg.join("")}</svg>${legend}`;
}

async function showFlexibility() {
  const requests = await api("/flex/requests");
  if (!requests.length) { $("#flex").innerHTML = `<p class="muted">The DSO has posted no flexibility request.</p>`; return; }
  $("#flex").innerHTML = requests.map((r) => `<div class="flex-request">
    <h3>Request #${r.request_id}: ${esc(r.service)} ${esc(r.direction)}, ${kW(r.power_w)} at bus ${r.congestion_bus} — ${esc(r.status)}</h3>
    <dl class="facts"><dt>Window</dt><dd>${when(r.window_start)} – ${when(r.window_end)}</dd>
    <dt>Offers due</dt><dd>${when(r.bid_deadline)}</dd>
    <dt>Price caps</dt><dd>availability ${perKWh(r.max_availability_price_per_kwh)}, utilisation ${perKWh(r.max_utilisation_price_per_kwh)}</dd>
    <dt>Escrow</dt><dd>${tokens(r.escrow)}</dd><dt>Awarded</dt><dd>${kW(r.awarded_power_w ?? 0)}</dd>
    <dt>Paid / refunded</dt><dd>${tokens(r.paid)} / ${tokens(r.refunded)}</dd></dl>
    <div class="scroll">${table(["Offer", "Provider", "Power", "Availability", "Utilisation", "Awarded", "Paid"], r.offers.map((o) => [
      short(o.offer_id), short(o.provider), kW(o.power_w), perKWh(o.availability_price_per_kwh), perKWh(o.utilisation_price_per_kwh),
      o.awarded ? "yes" : "no", tokens((o.availability_payment ?? 0) + (o.utilisation_payment ?? 0))]), "No offers yet.")}</div>
    <div class="scroll">${table(["Offer", "Slot", "Activated", "Ordered", "Baseline", "Measured", "Delivered"], r.offers.flatMap((o) => o.deliveries.map((d) => [
      short(o.offer_id), when(d.slot), kW(d.activated_w ?? 0), kWh(d.ordered_wh), kWh(d.baseline_wh), kWh(d.actual_wh), kWh(d.delivered_wh)])), "No activations yet.")}</div>
  </div>`).join("");
}

// ─────────────── the prosumer: a key in the browser or an injected EIP-1193 wallet ───────────────

function useKey(hex) {
  const key = hex.trim().startsWith("0x") ? hex.trim() : `0x${hex.trim()}`;
  if (!/^0x[0-9a-fA-F]{64}$/.test(key)) throw new ApiError("A private key is 32 bytes written as 64 hexadecimal digits (with or without 0x).");
  const account = privateKeyToAccount(key);
  localStorage.setItem(KEY_STORE, key);
  state.signer = { address: account.address, kind: "key in this browser", sign: (typed) => account.signTypedData(typed) };
}

// EIP-1193 errors in words: 4001 is the user saying no in the wallet (EIP-1193, "User Rejected Request").
function walletError(error, what) {
  if (error?.code === 4001) return new ApiError(`You declined ${what} in your wallet: nothing was sent.`);
  return new ApiError(`Your wallet refused ${what}: ${error?.message ?? error}`);
}

async function useInjected() {
  const provider = window.ethereum;
  if (!provider) throw new ApiError("No browser wallet found (window.ethereum is missing): install one such as MetaMask, or use a key kept in this browser.");
  let address, chainId;
  try {
    [address] = await provider.request({ method: "eth_requestAccounts" });
    chainId = Number(await provider.request({ method: "eth_chainId" }));
  } catch (e) { throw walletError(e, "the connection"); }
  if (!address) throw new ApiError("Your wallet shared no account: unlock it and connect again.");
  if (chainId !== state.version.chain_id) {
    throw new ApiError(`Your wallet is on chain ${chainId}, this market on chain ${state.version.chain_id}: switch your wallet's network, then connect again.`);
  }
  state.signer = {
    address, kind: "browser wallet (eth_signTypedData_v4)",
    sign: async (typed) => {
      try {
        return await provider.request({
          method: "eth_signTypedData_v4",
          params: [address, JSON.stringify({ ...typed, types: { EIP712Domain: DOMAIN_TYPE, ...typed.types } }, (_, v) => (typeof v === "bigint" ? v.toString() : v))],
        });
      } catch (e) { throw walletError(e, `the signature of the ${typed.primaryType === "Order" ? "order" : "cancellation"}`); }
    },
  };
}

function upcomingSlots() {
  const { slot_seconds: slot, gate_closure_seconds: gate } = state.version;
  const now = state.health.chain_time;
  const first = Math.ceil((now + gate + 1) / slot) * slot;
  return Array.from({ length: 12 }, (_, i) => first + i * slot);
}

async function showProsumer() {
  const select = $("#order-slot");
  const keep = select.value;
  select.innerHTML = upcomingSlots().map((s) => `<option value="${s}">${localTime.format(new Date(s * 1000))}</option>`).join("");
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
  const signer = state.signer;
  if (!signer) {
    $("#account").innerHTML = `<dt>Account</dt><dd>none: use a key or connect a wallet to sign orders.</dd>`;
    $("#my-orders").innerHTML = $("#my-trades").innerHTML = "";
    return;
  }
  const me = await api(`/participants/${signer.address}`, { allow404: true });
  $("#account").innerHTML = `<dt>Account</dt><dd class="hash" id="address">${signer.address}</dd><dt>Signs with</dt><dd>${signer.kind}</dd>` + (me ? `
    <dt>Connection</dt><dd>bus ${me.bus}, ${kW(me.capacity_w)} (at most ${kWh(me.max_order_wh)} per order)</dd>
    <dt>Market balance</dt><dd id="balance">${tokens(me.market_balance.available)} available, ${tokens(me.market_balance.locked)} locked in escrow</dd>
    <dt>Wallet tokens</dt><dd>${tokens(me.token_balance)}</dd>` : `<dt>Registration</dt><dd class="bad">This account is not registered: the facilitator must register it (meter, bus, capacity) before its orders are accepted.</dd>`);
  if (!me) { $("#my-orders").innerHTML = $("#my-trades").innerHTML = ""; return; }
  const [orders, trades] = await Promise.all([api(`/participants/${signer.address}/orders`), api(`/participants/${signer.address}/trades`)]);
  $("#my-orders").innerHTML = table(["Order", "Side", "Delivery", "Energy", "Limit", "Filled", "Status", ""], orders.map((o) => [
    short(o.order_hash), o.order.side, when(o.order.delivery_start), kWh(o.order.energy_wh), perKWh(o.order.price_per_kwh),
    kWh(o.filled_wh), `<span class="status" data-hash="${o.order_hash}">${esc(o.status)}</span>${o.reason ? `: ${esc(o.reason)}` : ""}`,
    ["accepted", "on_chain"].includes(o.status) && !o.cancellation ? `<button class="cancel secondary" data-hash="${o.order_hash}">Cancel</button>` : ""]), "No orders yet.");
  $("#my-trades").innerHTML = table(["Delivery", "Side", "Filled", "Amount", "Network charge", "Settled: deviation", "Payment", "Imbalance"], trades.map((t) => [
    when(t.delivery_start), t.side, kWh(t.filled_wh), tokens(t.amount), tokens(t.network_charge),
    t.settlement ? kWh(t.settlement.deviation_wh) : "not yet", t.settlement ? tokens(t.settlement.payment) : "–", t.settlement ? tokens(t.settlement.imbalance_charge) : "–"]), "No trades yet.");
}

async function placeOrder(form) {
  if (!state.signer) throw new ApiError("Connect a wallet or use a key first: an order must be signed by its prosumer.");
  const data = new FormData(form);
  const energyWh = Math.round(Number(data.get("energy")) * 1000);
  const price = Math.round(Number(data.get("price")) * TOKEN);
  if (!Number.isFinite(energyWh) || energyWh < 1) throw new ApiError("Energy must be at least 0.001 kWh (1 Wh).");
  if (!Number.isFinite(price) || price < 0) throw new ApiError("The limit price must be a number of tokens per kWh, 0 or more.");
  const me = await api(`/participants/${state.signer.address}`, { allow404: true });
  if (!me) throw new ApiError("This account is not registered: the facilitator must register it before its orders are accepted.");
  const deliveryStart = Number(data.get("slot"));
  const order = {
    prosumer: state.signer.address, side: data.get("side"), delivery_start: deliveryStart, energy_wh: energyWh,
    price_per_kwh: price, nonce: me.next_nonce, expiry: deliveryStart,
  };
  const typed = {
    domain: state.version.eip712_domain, types: ORDER_TYPES, primaryType: "Order",
    message: {
      prosumer: order.prosumer, side: order.side === "buy" ? 0 : 1, deliveryStart: BigInt(deliveryStart), energyWh,
      pricePerKWh: BigInt(price), nonce: BigInt(order.nonce), expiry: BigInt(order.expiry),
    },
  };
  const signature = await state.signer.sign(typed);
  const accepted = await api("/orders", { method: "POST", body: { ...order, signature } });
  const expected = hashTypedData(typed);
  $("#order-result").innerHTML = `Order <span class="hash" id="order-hash">${accepted.order_hash}</span> ${accepted.status}: ${order.side} ${kWh(energyWh)} at most ${perKWh(price)} for ${when(deliveryStart)}.`
    + (expected.toLowerCase() === accepted.order_hash.toLowerCase() ? "" : " (The service hashed it differently from this page: check the domain.)");
}

async function cancelOrder(orderHash) {
  const typed = { domain: state.version.eip712_domain, types: CANCELLATION_TYPES, primaryType: "Cancellation", message: { orderHash } };
  const signature = await state.signer.sign(typed);
  await api(`/orders/${orderHash}/cancellation`, { method: "POST", body: { signature } });
  $("#order-result").textContent = `Cancellation of ${orderHash} sent.`;
}

async function showAudit() {
  const cleared = state.slots.filter((s) => s.status !== "open").slice(0, 12);
  if (!cleared.length) { $("#audits").innerHTML = `<p class="muted">No slot has been cleared yet: nothing to audit.</p>`; return; }
  const audits = await Promise.all(cleared.map((s) => api(`/audit/slots/${s.delivery_start}`)));
  $("#audits").innerHTML = table(["Slot", "Status", "Audit", "Why"], audits.map((a, i) => [
    when(a.delivery_start), cleared[i].status, a.confirmed ? `<span class="ok">confirmed</span>` : `<span class="bad">refuted</span>`,
    `<span class="text">${a.confirmed ? "price, fills, network report and settlement match a re-run from public records" : a.differences.map(esc).join("; ")}</span>`]), "");
}

// ─────────────── navigation, live updates ───────────────

const VIEWS = { market: showMarket, network: showNetwork, flexibility: showFlexibility, prosumer: showProsumer, audit: showAudit };
let rendering = Promise.resolve();

function render() {
  const view = VIEWS[location.hash.slice(1)] ? location.hash.slice(1) : "market";
  state.view = view;
  document.querySelectorAll(".view").forEach((v) => { v.hidden = v.id !== `view-${view}`; });
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.view === view));
  rendering = rendering.then(async () => {
    try {
      await refreshCommon();
      await VIEWS[view]();
      document.body.dataset.rendered = view; // for tests and screenshots: the view has its data
    } catch (e) { showError(e); }
  });
  return rendering;
}

let pending = null;
function onEvent(kind, data) {
  const what = {
    order_accepted: () => `order accepted: ${data.side} ${kWh(data.energy_wh)} for ${localTime.format(new Date(data.delivery_start * 1000))}`,
    order_on_chain: () => `order on-chain: ${data.side} ${kWh(data.energy_wh)}`,
    order_cancelled: () => `order ${data.order_hash.slice(0, 10)}… cancelled`,
    slot_cleared: () => `slot ${localTime.format(new Date(data.delivery_start * 1000))} cleared at ${perKWh(data.clearing_price_per_kwh)}, ${kWh(data.traded_wh)}`,
    slot_settled: () => `slot ${localTime.format(new Date(data.delivery_start * 1000))} settled`,
    flexibility: () => `flexibility request #${data.request_id}: ${data.status}, ${data.offers} offer(s)`,
  }[kind];
  $("#live").textContent = `Live · ${new Date().toLocaleTimeString()} · ${what ? what() : kind}`;
  clearTimeout(pending);
  pending = setTimeout(render, 300); // a burst of events redraws once
}

function listen() {
  const source = new EventSource("/events");
  source.onopen = () => { $("#live").textContent = "Live: updates arrive as the market moves."; };
  source.onerror = () => { $("#live").textContent = "Live updates interrupted: reconnecting…"; };
  for (const kind of ["order_accepted", "order_on_chain", "order_cancelled", "slot_cleared", "slot_settled", "flexibility"]) {
    source.addEventListener(kind, (e) => onEvent(kind, JSON.parse(e.data).data));
  }
}

function act(fn) {
  return async (event) => {
    event.preventDefault?.();
    clearError();
    try { await fn(event); await render(); } catch (e) { showError(e); }
  };
}

$("#order-form").addEventListener("submit", act((e) => placeOrder(e.target)));
$("#use-key").addEventListener("click", act(() => useKey($("#key").value)));
$("#new-key").addEventListener("click", act(() => { const key = generatePrivateKey(); $("#key").value = key; useKey(key); }));
$("#injected").addEventListener("click", act(useInjected));
$("#forget").addEventListener("click", act(() => { localStorage.removeItem(KEY_STORE); state.signer = null; $("#key").value = ""; }));
$("#my-orders").addEventListener("click", act(async (e) => { if (e.target.matches("button.cancel")) await cancelOrder(e.target.dataset.hash); }));
$("#book-slot").addEventListener("change", act(showBook));
$("#network-slot").addEventListener("change", act(showNetwork));
window.addEventListener("hashchange", () => { clearError(); render(); });

const stored = localStorage.getItem(KEY_STORE);
if (stored) { try { useKey(stored); } catch { localStorage.removeItem(KEY_STORE); } }
render();
listen();
