"""The year study (issue 12): market designs compared on one SimBench grid and one welfare.

grid.py       the grid, its year of profiles, its participants (loads, PV, batteries)
devices.py    batteries' state of charge and the participants' bidding rules
tariffs.py    the DSO's network charge per traded kWh: flat, time of use, critical peak
config.py     every stated assumption (tariffs, rates, reinforcement, gas)
market.py     designs (a)–(d): the auction and ``facilitate`` slot by slot, screened per day
optimum.py    design (e): the welfare-maximising dispatch under the network's limits (an LP)
records.py    what a run records, and one record type per slot
accounts.py   who paid whom, and the welfare every design is measured by
run.py        ``run_study``: every design over the same days
ledger.py     a chosen day on the ledger (embedded chain), compared slot by slot
"""
