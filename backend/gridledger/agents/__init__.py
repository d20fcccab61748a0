"""Agents that use the market the way its parties do, through the facilitator's HTTP API only:
prosumers (``prosumer``), the meter operator and the DSO (``operators``), and the community that
runs them against a facilitator with its market clock (``community``)."""
